// model-exporter live page: fetches /api/v1/status and draws it, again every refresh_seconds.
//
// Hand-written, no dependencies, no build step. Every value from the sidecar reaches the page
// through textContent or setAttribute, never innerHTML: a model called "<script>" is text.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MIN_REFRESH = 1;
  const MAX_REFRESH = 10;
  const MAX_ANOMALY_ROWS = 8;
  const state = { window: null, data: null, timer: null, failures: 0, loaded: false };

  // -- DOM helpers ------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = String(value);
      else if (key === "onclick") el.addEventListener("click", value);
      else el.setAttribute(key, String(value));
    }
  }

  function append(el, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  // -- formatting -------------------------------------------------------------------------

  function num(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    if (a >= 1000) return Math.round(v).toLocaleString("en-US");
    return Number(v.toPrecision(digits || 3)).toString();
  }

  function fixed(v, digits) {
    return v === null || v === undefined || !isFinite(v) ? "–" : v.toFixed(digits);
  }

  function pct(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const p = v * 100;
    return (p !== 0 && Math.abs(p) < 0.1 ? p.toFixed(2) : p.toFixed(1)) + "%";
  }

  function count(v) {
    return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US");
  }

  function bytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let x = v;
    let i = 0;
    while (x >= 1024 && i < units.length - 1) {
      x /= 1024;
      i += 1;
    }
    return (i === 0 ? String(x) : x.toFixed(1)) + " " + units[i];
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const t = Math.max(seconds, 0);
    if (t < 90) return Math.round(t) + " s";
    if (t < 5400) return Math.round(t / 60) + " min";
    if (t < 172800) return (t / 3600).toFixed(1) + " h";
    return Math.round(t / 86400) + " d";
  }

  function clock(t) {
    return new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }

  // -- charts -----------------------------------------------------------------------------

  // A small line chart in SVG. series: [{values, cls, label}]; times: x values (seconds).
  // opts: {width, height, axes, floor, above: {values, threshold}} — "above" shades where a
  // series is over its threshold series.
  function chart(times, series, opts) {
    const width = opts.width || 240;
    const height = opts.height || 30;
    const pad = opts.axes ? { l: 44, r: 8, t: 8, b: 18 } : { l: 1, r: 1, t: 3, b: 3 };
    const svg = s("svg", {
      class: "chart" + (opts.axes ? " axes" : ""),
      viewBox: `0 0 ${width} ${height}`,
      width: width,
      height: height,
      role: "img",
      "aria-label": opts.label || "chart",
    });
    const finite = [];
    for (const one of series) for (const v of one.values) if (v !== null && isFinite(v)) finite.push(v);
    if (times.length === 0 || finite.length === 0) {
      svg.append(
        s("text", { x: width / 2, y: height / 2 + 4, class: "nodata", "text-anchor": "middle", text: "no data yet" }),
      );
      return svg;
    }
    let lo = Math.min(...finite);
    let hi = Math.max(...finite);
    if (opts.floor !== undefined) lo = Math.min(lo, opts.floor);
    if (hi === lo) {
      hi = hi + (Math.abs(hi) || 1) * 0.1;
      lo = lo - (Math.abs(lo) || 1) * 0.1;
      if (opts.floor !== undefined) lo = Math.max(lo, opts.floor);
    }
    hi += (hi - lo) * 0.08;
    const t0 = times[0];
    const t1 = Math.max(times[times.length - 1], t0 + 1);
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
    const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);

    if (opts.axes) {
      for (const v of [lo, (lo + hi) / 2, hi]) {
        svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid" }));
        svg.append(s("text", { x: pad.l - 4, y: y(v) + 3, "text-anchor": "end", class: "tick", text: opts.pct ? pct(v) : num(v) }));
      }
      svg.append(s("text", { x: pad.l, y: height - 4, class: "tick", text: clock(t0) }));
      svg.append(s("text", { x: width - pad.r, y: height - 4, "text-anchor": "end", class: "tick", text: clock(t1) }));
    }
    if (opts.above) {
      const { values, threshold } = opts.above;
      for (let i = 0; i < times.length; i += 1) {
        const v = values[i];
        const t = threshold[i];
        if (v === null || t === null || v <= t) continue;
        const left = i > 0 ? (x(times[i - 1]) + x(times[i])) / 2 : x(times[i]) - 2;
        const right = i < times.length - 1 ? (x(times[i]) + x(times[i + 1])) / 2 : x(times[i]) + 2;
        svg.append(s("rect", { x: left, y: pad.t, width: Math.max(right - left, 1.5), height: height - pad.t - pad.b, class: "over" }));
      }
    }
    for (const one of series) {
      let d = "";
      let pen = false;
      const dots = [];
      one.values.forEach((v, i) => {
        if (v === null || !isFinite(v)) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
        if (!pen) dots.push(i);
        pen = true;
      });
      const path = s("path", { d: d, class: "line " + (one.cls || "") });
      if (one.label) path.append(s("title", { text: one.label }));
      svg.append(path);
      // a lone point (no neighbour to draw a line to) still shows
      for (const i of dots) {
        const next = one.values[i + 1];
        if (next === null || next === undefined) {
          svg.append(s("circle", { cx: x(times[i]), cy: y(one.values[i]), r: 1.8, class: "dot " + (one.cls || "") }));
        }
      }
    }
    return svg;
  }

  // -- rendering --------------------------------------------------------------------------

  function windowNames(data) {
    for (const model of data.models) return Object.keys(model.windows);
    return [];
  }

  function renderTabs(data) {
    const nav = document.getElementById("windows");
    const names = windowNames(data);
    nav.replaceChildren(
      ...names.map((name) =>
        h("button", {
          type: "button",
          class: name === state.window ? "tab active" : "tab",
          "aria-pressed": name === state.window ? "true" : "false",
          "data-window": name,
          text: name,
          onclick: () => choose(name),
        }),
      ),
    );
  }

  function renderHeader(data) {
    document.getElementById("version").textContent = "v" + data.exporter_version;
    const health = document.getElementById("health");
    const ok = data.health.live && data.health.ready;
    health.className = "pill " + (ok ? "ok" : data.health.live ? "warn" : "bad");
    health.textContent = ok ? "healthy" : data.health.live ? "not ready" : "unhealthy";
    health.title = `liveness: ${data.health.live_detail}; readiness: ${data.health.ready_detail}`;
    document.getElementById("updated").textContent =
      `updated ${clock(data.generated_at)} · refreshes every ${refreshSeconds(data)} s`;
  }

  function drifting(model) {
    const w = model.windows[state.window];
    return w ? w.drift.filter((d) => d.drifted) : [];
  }

  function kpi(label, value, note, cls) {
    return h("div", { class: "kpi " + (cls || "") }, h("div", { class: "kpi-label", text: label }), h("div", { class: "kpi-value", text: value }), note ? h("div", { class: "kpi-note", text: note }) : null);
  }

  function renderModel(model, data) {
    const name = state.window;
    const w = model.windows[name];
    const hist = (model.history || {})[name];
    const ref = data.reference;
    const drifted = drifting(model);
    const badge = !ref
      ? h("span", { class: "badge muted-badge", text: "no reference: no drift verdicts" })
      : drifted.length
        ? h("span", { class: "badge bad", text: `drift in ${new Set(drifted.map((d) => d.field)).size} field(s)` })
        : h("span", { class: "badge ok", text: "no drift" });
    const card = h(
      "section",
      { class: "card model", "data-model": model.model, "data-version": model.version },
      h("div", { class: "card-head" }, h("h2", {}, h("span", { class: "model-name", text: model.model }), " ", h("span", { class: "version", text: model.version })), badge),
    );
    card.append(renderKpis(model, w, ref));
    card.append(renderTrends(w, hist, ref, data, model));
    card.append(renderDrift(w, hist));
    card.append(renderFields(w, hist, ref, data));
    card.append(renderAnomalies(model, w));
    return card;
  }

  function renderKpis(model, w, ref) {
    const tiles = [];
    tiles.push(kpi("records / s", num(w.records_per_second), `${count(w.records)} in ${state.window}`));
    tiles.push(kpi("records since start", count(model.records_total), model.last_record_timestamp ? `last stamped ${age(Date.now() / 1000 - model.last_record_timestamp)} ago` : null));
    const gaps = w.gaps;
    if (w.mae !== null || w.rmse !== null) {
      tiles.push(kpi("MAE", num(w.mae), gaps.mae !== null ? `${fixed(gaps.mae, 2)}× development` : null, gaps.mae !== null && gaps.mae > 1.2 ? "bad" : ""));
      tiles.push(kpi("RMSE", num(w.rmse), gaps.rmse !== null ? `${fixed(gaps.rmse, 2)}× development` : null, gaps.rmse !== null && gaps.rmse > 1.2 ? "bad" : ""));
    } else {
      const dev = ref && ref.error_ratio !== null ? `development ${pct(ref.error_ratio)}` : null;
      const gap = gaps.error_ratio !== null ? ` · ${fixed(gaps.error_ratio, 2)}×` : "";
      tiles.push(kpi("error ratio", pct(w.error_ratio), dev ? dev + gap : `${count(w.ground_truth)} labelled`, gaps.error_ratio !== null && gaps.error_ratio > 1.15 ? "bad" : ""));
    }
    if (w.estimated_error_ratio !== null && w.estimated_error_ratio !== undefined) {
      tiles.push(kpi("estimated error ratio", pct(w.estimated_error_ratio), "from confidence, no labels"));
    }
    if (gaps.confidence !== null) {
      tiles.push(kpi("confidence", `${fixed(gaps.confidence, 2)}×`, "mean vs development", gaps.confidence < 0.9 ? "bad" : ""));
    }
    let worst = null;
    for (const [field, kinds] of Object.entries(w.anomalies)) {
      for (const [kind, ratio] of Object.entries(kinds)) if (!worst || ratio > worst[2]) worst = [field, kind, ratio];
    }
    tiles.push(kpi("largest anomaly", worst ? pct(worst[2]) : "none", worst ? `${worst[0]} · ${worst[1]}` : `in ${state.window}`, worst && worst[2] > 0.05 ? "warn" : ""));
    return h("div", { class: "kpis" }, tiles);
  }

  function renderTrends(w, hist, ref, data, model) {
    const box = h("div", { class: "trends" });
    if (!hist) return box;
    const t = hist.time;
    box.append(
      h("figure", {}, h("figcaption", { text: `records in the ${state.window} window` }), chart(t, [{ values: hist.records, cls: "s1", label: "records" }], { axes: true, width: 360, height: 120, floor: 0, label: "records in window" })),
    );
    if (w.mae !== null || w.rmse !== null || hist.mae_gap.some((v) => v !== null)) {
      box.append(
        h(
          "figure",
          {},
          h("figcaption", { text: "MAE and RMSE ÷ development (1 = as in development)" }),
          chart(t, [{ values: hist.mae_gap, cls: "s1", label: "MAE gap" }, { values: hist.rmse_gap, cls: "s2", label: "RMSE gap" }, { values: t.map(() => 1), cls: "ref", label: "development" }], { axes: true, width: 360, height: 120, floor: 0, label: "MAE and RMSE gaps" }),
          legend([["s1", "MAE gap"], ["s2", "RMSE gap"], ["ref", "development"]]),
        ),
      );
    } else if (ref && ref.error_ratio !== null) {
      box.append(
        h(
          "figure",
          {},
          h("figcaption", { text: "error ratio against development" }),
          chart(t, [{ values: hist.error_ratio, cls: "s1", label: "error ratio" }, { values: t.map(() => ref.error_ratio), cls: "ref", label: "development" }], { axes: true, pct: true, width: 360, height: 120, floor: 0, label: "error ratio against development" }),
          legend([["s1", "production"], ["ref", "development"]]),
        ),
      );
    }
    return box;
  }

  function legend(items) {
    return h("div", { class: "legend" }, items.map(([cls, label]) => h("span", { class: "key" }, h("span", { class: "swatch " + cls }), label)));
  }

  function renderDrift(w, hist) {
    const section = h("div", { class: "block" }, h("h3", { text: `Drift against the reference · ${state.window} window` }));
    if (w.drift.length === 0) {
      section.append(h("p", { class: "muted", text: "No verdict yet: a field needs enough samples in the window (drift.min_samples) and a reference profile." }));
      return section;
    }
    const rows = w.drift.map((d) => {
      const series = hist && hist.drift[d.field] ? hist.drift[d.field][d.statistic] : null;
      const ratio = d.threshold ? d.value / d.threshold : 0;
      return h(
        "tr",
        { class: d.drifted ? "drifted" : "", "data-field": d.field, "data-statistic": d.statistic, "data-drifted": d.drifted ? "true" : "false" },
        h("td", { class: "field", text: d.field }),
        h("td", { class: "stat", text: d.statistic.toUpperCase() }),
        h("td", { class: "num value", text: fixed(d.value, 3) }),
        h("td", { class: "num threshold", text: fixed(d.threshold, 3) }),
        h("td", { class: "gauge" }, gauge(ratio)),
        h("td", { class: "flag" }, d.drifted ? h("span", { class: "badge bad", text: "DRIFT" }) : h("span", { class: "badge ok", text: "ok" })),
        h("td", { class: "spark" }, series ? chart(hist.time, [{ values: series.value, cls: d.drifted ? "bad" : "s1", label: d.statistic }, { values: series.threshold, cls: "ref", label: "threshold" }], { floor: 0, above: { values: series.value, threshold: series.threshold }, label: `${d.field} ${d.statistic} against its threshold` }) : null),
      );
    });
    section.append(
      h(
        "table",
        { class: "grid-table drift" },
        h("thead", {}, h("tr", {}, ["field", "statistic", "value", "threshold", "value ÷ threshold", "", "last hour (dashed: threshold)"].map((c, i) => h("th", { class: i >= 2 && i <= 3 ? "num" : "", text: c })))),
        h("tbody", {}, rows),
      ),
    );
    return section;
  }

  function gauge(ratio) {
    const width = 120;
    const full = 2; // the bar spans 0 .. 2× threshold
    const clamp = Math.min(Math.max(ratio, 0), full);
    return s(
      "svg",
      { class: "gaugebar", viewBox: `0 0 ${width} 12`, width: width, height: 12, role: "img", "aria-label": `${fixed(ratio, 2)} of the threshold` },
      s("rect", { x: 0, y: 2, width: width, height: 8, class: "track" }),
      s("rect", { x: 0, y: 2, width: (clamp / full) * width, height: 8, class: ratio > 1 ? "fill bad" : "fill" }),
      s("line", { x1: width / 2, x2: width / 2, y1: 0, y2: 12, class: "mark" }),
      s("title", { text: `${fixed(ratio, 2)}× the threshold` }),
    );
  }

  function renderFields(w, hist, ref, data) {
    const section = h("div", { class: "block" }, h("h3", { text: `Fields · ${state.window} window (grey: reference)` }));
    const levels = data.quantiles;
    const refNumeric = new Map((ref ? ref.numeric : []).map((r) => [r.field, r]));
    const refCategorical = new Map((ref ? ref.categorical : []).map((r) => [r.field, r]));
    const head = ["field", "samples", "mean", ...levels.map((q) => "p" + Math.round(Number(q) * 100)), "quantiles, last hour (dashed: reference)"];
    const rows = w.numeric.map((f) => {
      const r = refNumeric.get(f.field);
      const cells = [
        h("td", { class: "field", text: f.field }),
        h("td", { class: "num", text: count(f.samples) }),
        h("td", { class: "num" }, num(f.mean, 4), r ? h("div", { class: "ref", text: num(r.mean, 4) }) : null),
      ];
      for (const q of levels) {
        cells.push(h("td", { class: "num" }, num(f.quantiles[q], 4), r ? h("div", { class: "ref", text: num(r.quantiles[q], 4) }) : null));
      }
      const series = [];
      const qh = hist ? hist.quantiles[f.field] : null;
      if (qh) {
        levels.forEach((q, i) => {
          series.push({ values: qh[q], cls: "q" + i, label: "p" + Math.round(Number(q) * 100) });
          if (r && r.quantiles[q] !== null && r.quantiles[q] !== undefined) {
            series.push({ values: hist.time.map(() => r.quantiles[q]), cls: "ref q" + i, label: "reference p" + Math.round(Number(q) * 100) });
          }
        });
      }
      cells.push(h("td", { class: "spark" }, qh ? chart(hist.time, series, { label: `${f.field} quantiles against the reference` }) : null));
      return h("tr", { "data-field": f.field }, cells);
    });
    section.append(
      h("table", { class: "grid-table fields" }, h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { class: i >= 1 && i < head.length - 1 ? "num" : "", text: c })))), h("tbody", {}, rows)),
    );
    if (w.categorical.length) {
      const cats = w.categorical.map((c) => {
        const r = refCategorical.get(c.field);
        const top = Object.entries(c.shares).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, 6);
        return h(
          "tr",
          { "data-field": c.field },
          h("td", { class: "field", text: c.field }),
          h("td", { class: "num", text: count(c.samples) }),
          h(
            "td",
            { class: "shares" },
            top.length === 0 ? h("span", { class: "muted", text: "no values" }) : top.map(([value, share]) => h("span", { class: "share" }, h("span", { class: "cat", text: value }), " ", pct(share), r ? h("span", { class: "ref", text: " ref " + pct(r.shares[value] || 0) }) : null)),
          ),
        );
      });
      section.append(h("table", { class: "grid-table cats" }, h("thead", {}, h("tr", {}, h("th", { text: "category field" }), h("th", { class: "num", text: "samples" }), h("th", { text: "top values: share (reference share)" }))), h("tbody", {}, cats)));
    }
    return section;
  }

  function renderAnomalies(model, w) {
    const section = h("div", { class: "block" }, h("h3", { text: `Anomalies · ${state.window} window` }));
    const found = [];
    for (const [field, kinds] of Object.entries(w.anomalies)) {
      for (const [kind, ratio] of Object.entries(kinds)) found.push([field, kind, ratio]);
    }
    if (found.length === 0) {
      section.append(h("p", { class: "muted", text: "No anomaly in this window." }));
      return section;
    }
    found.sort((a, b) => b[2] - a[2]); // the largest shares first
    const rows = found.slice(0, MAX_ANOMALY_ROWS).map(([field, kind, ratio]) => {
      const total = (model.anomalies_total[field] || {})[kind] || 0;
      return h("tr", { class: ratio > 0.05 ? "warn" : "", "data-field": field, "data-kind": kind }, h("td", { class: "field", text: field }), h("td", { text: kind.replace(/_/g, " ") }), h("td", { class: "num", text: pct(ratio) }), h("td", { class: "num", text: count(total) }));
    });
    section.append(h("table", { class: "grid-table anomalies" }, h("thead", {}, h("tr", {}, h("th", { text: "field" }), h("th", { text: "kind" }), h("th", { class: "num", text: "share of records" }), h("th", { class: "num", text: "since start" }))), h("tbody", {}, rows)));
    if (found.length > MAX_ANOMALY_ROWS) {
      section.append(h("p", { class: "muted small", text: `and ${found.length - MAX_ANOMALY_ROWS} smaller (all in /api/v1/status and /metrics)` }));
    }
    return section;
  }

  function renderSidecar(data) {
    const ref = data.reference;
    const sc = data.sidecar;
    const card = h("section", { class: "card sidecar" }, h("div", { class: "card-head" }, h("h2", { text: "The sidecar" })));
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", { text: "liveness" }), h("dd", { text: data.health.live_detail }),
      h("dt", { text: "readiness" }), h("dd", { text: data.health.ready_detail }),
      h("dt", { text: "reference" }), h("dd", { class: "mono", text: ref ? ref.hash : "none" }),
      h("dt", { text: "reference built" }), h("dd", { text: ref ? `${ref.created} (${age(ref.age_seconds)} ago, ${count(ref.records)} records)` : "–" }),
      h("dt", { text: "up since" }), h("dd", { text: `${new Date(data.started_at * 1000).toLocaleString("en-GB")} (${age(data.generated_at - data.started_at)})` }),
      h("dt", { text: "ingest time" }), h("dd", { text: `${fixed(sc.ingest_seconds_total, 1)} s in total` }),
      h("dt", { text: "reference loads" }), h("dd", { text: `${sc.reference_reloads.ok} ok, ${sc.reference_reloads.error} failed` }),
      h("dt", { text: "checkpoint errors" }), h("dd", { text: count(sc.checkpoint_errors_total) }),
    );
    card.append(facts);
    const head = ["source", "up", "lines", "read", "lag", "parse errors", "last read", "rotations", "truncations", "open files"];
    const rows = sc.sources.map((src) => {
      const errors = Object.values(src.parse_errors).reduce((a, b) => a + b, 0);
      const reasons = Object.entries(src.parse_errors).map(([r, c]) => `${r.replace(/_/g, " ")}: ${count(c)}`).join(", ");
      return h(
        "tr",
        { "data-source": src.source },
        h("td", { class: "mono", text: src.source }),
        h("td", {}, h("span", { class: src.up ? "badge ok" : "badge bad", text: src.up ? "up" : "down" })),
        h("td", { class: "num", text: count(src.lines_total) }),
        h("td", { class: "num", text: bytes(src.bytes_read_total) }),
        h("td", { class: "num" + (src.lag_bytes > 1048576 ? " warn-text" : ""), text: bytes(src.lag_bytes) }),
        h("td", { class: "num", title: reasons || null, text: errors ? `${count(errors)} (${reasons})` : "0" }),
        h("td", { class: "num", text: src.last_read_age_seconds === null ? "never" : `${age(src.last_read_age_seconds)} ago` }),
        h("td", { class: "num", text: count(src.rotations_total) }),
        h("td", { class: "num", text: count(src.truncations_total) }),
        h("td", { class: "num", text: count(src.open_files) }),
      );
    });
    card.append(h("table", { class: "grid-table sources" }, h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { class: i >= 2 ? "num" : "", text: c })))), h("tbody", {}, rows)));
    return card;
  }

  function render(data) {
    const names = windowNames(data);
    if (!names.includes(state.window)) state.window = names.length ? names[0] : null;
    renderHeader(data);
    renderTabs(data);
    const main = document.getElementById("main");
    const parts = [];
    if (data.models.length === 0) {
      parts.push(h("section", { class: "card" }, h("p", { class: "empty", text: "No record yet: the sidecar is waiting for its log." })));
    }
    let drifted = 0;
    for (const model of data.models) {
      drifted += drifting(model).length ? 1 : 0;
      parts.push(renderModel(model, data));
    }
    parts.push(renderSidecar(data));
    main.replaceChildren(...parts);
    document.title = (drifted ? `⚠ drift · ` : "") + "model-exporter";
    document.body.setAttribute("data-generated-at", String(data.generated_at));
  }

  // -- fetching ---------------------------------------------------------------------------

  function refreshSeconds(data) {
    const step = data && data.refresh_seconds ? data.refresh_seconds : 5;
    return Math.min(Math.max(step, MIN_REFRESH), MAX_REFRESH);
  }

  function choose(name) {
    state.window = name;
    history.replaceState(null, "", "#window=" + encodeURIComponent(name));
    if (state.data) render(state.data);
    refresh();
  }

  async function refresh() {
    clearTimeout(state.timer);
    const wanted = state.loaded && state.window ? encodeURIComponent(state.window) : "all";
    try {
      const response = await fetch("/api/v1/status?history=" + wanted, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const data = await response.json();
      state.data = data;
      state.loaded = true;
      state.failures = 0;
      render(data);
    } catch (error) {
      state.failures += 1;
      const health = document.getElementById("health");
      health.className = "pill bad";
      health.textContent = "no answer";
      document.getElementById("updated").textContent = `the sidecar did not answer (${error.message}); retrying`;
    }
    const wait = refreshSeconds(state.data) * Math.min(1 + state.failures, 6);
    state.timer = setTimeout(refresh, wait * 1000);
  }

  function start() {
    const match = /window=([^&]+)/.exec(location.hash);
    try {
      if (match) state.window = decodeURIComponent(match[1]);
    } catch (error) {
      state.window = null; // a malformed address: the first window
    }
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
