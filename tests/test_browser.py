"""The live page and the replay report, in a real browser: headless Chromium (tests/browser.py).

One log with a drift episode (tests/drift_episode.py) feeds both. The live page of the real
sidecar process is opened on the calm half, then the drifted half is written: the page must
flag the drifted fields by itself, without a reload (its own refresh fetches the JSON again).
``replay --html`` of the same file must show the alert episodes and rank the drifted fields
first. Any error in the browser's console fails a test, and each leaves a screenshot in
test-artifacts/ (``UPDATE_SCREENSHOTS=1`` also copies it to docs/images/ for the README).

Every wait is bounded and waits for something on the page (selenium's WebDriverWait), never for
time to pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from exporter.config import parse_config
from exporter.offline.baseline import ProfileBuilder
from tests import drift_episode
from tests.browser import chromium, console_errors, screenshot
from tests.configs import regression_fields, regression_lines, tailed_data, write_config
from tests.harness import RUN_TIMEOUT, WAIT, SidecarProcess, http_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chrome]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


@pytest.fixture
def episode(tmp_path: Path) -> drift_episode.Episode:
    return drift_episode.make(tmp_path)


def _status(sidecar: SidecarProcess) -> dict[str, Any]:
    got = http_get(f"{sidecar.url}/api/v1/status?history=none")
    if got is None or got[0] != 200:
        sidecar.assert_running()
        raise AssertionError(f"/api/v1/status answered {got!r}")
    result: dict[str, Any] = json.loads(got[1])
    return result


def _history_points(sidecar: SidecarProcess, window: str) -> int:
    got = http_get(f"{sidecar.url}/api/v1/status?history={window}")
    assert got is not None
    assert got[0] == 200
    models = json.loads(got[1])["models"]
    return int(models[0]["history"][window]["points"]) if models else 0


def _lines_read(sidecar: SidecarProcess) -> int:
    return sum(s["lines_total"] for s in _status(sidecar)["sidecar"]["sources"])


# The page redraws itself at every refresh, so an element found now may be gone a moment later:
# a row is read in one script call, against the document as it is at that instant.
_READ_ROW = """
const [field, statistic] = arguments;
const row = document.querySelector(
  `table.drift tr[data-field="${CSS.escape(field)}"][data-statistic="${CSS.escape(statistic)}"]`);
if (!row) return null;
const cells = {drifted: row.getAttribute("data-drifted")};
for (const name of ["field", "stat", "value", "threshold", "flag"]) {
  cells[name] = row.querySelector("td." + name).innerText.trim();
}
return cells;
"""


def _row(driver: Chrome, field: str, statistic: str) -> dict[str, str] | None:
    """The drift row of a field and statistic as shown: its cells' text and its flag."""
    found: dict[str, str] | None = driver.execute_script(_READ_ROW, field, statistic)
    return found


def _flag(driver: Chrome, field: str, statistic: str) -> str | None:
    """The row's drifted flag as the page shows it ("true"/"false"), None without a row."""
    row = _row(driver, field, statistic)
    return None if row is None else row["drifted"]


def _until(driver: Chrome, condition: Callable[[Chrome], Any], what: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(condition, f"waiting for {what}")


def test_the_live_page_flags_drift_as_it_happens_without_a_reload(
    episode: drift_episode.Episode,
    start_sidecar: Callable[..., SidecarProcess],
    browser: Chrome,
) -> None:
    drift_episode.append(episode.log, episode.calm)
    sidecar = start_sidecar(episode.config)
    wait_until(
        lambda: _lines_read(sidecar) == len(episode.calm),
        timeout=WAIT,
        message="the calm half to be read",
    )
    browser.get(f"{sidecar.url}/#window=5m")  # holds both halves for the whole test
    _until(browser, lambda d: _flag(d, "merchant_risk", "psi") == "false", "a calm verdict")
    assert _flag(browser, "amount", "ks") == "false"
    browser.execute_script("window.__sameDocument = 'yes'")
    # A few calm points in the 1m window's history (3 s buckets), so its charts show a before.
    calm = wait_until(
        lambda: (n := _history_points(sidecar, "1m")) >= 4 and n,
        timeout=WAIT,
        message="calm history",
    )

    drift_episode.append(episode.log, episode.drifted)
    for name, statistic in (("merchant_risk", "psi"), ("amount", "ks"), ("country", "js")):
        _until(
            browser,
            lambda d, n=name, s=statistic: _flag(d, n, s) == "true",
            f"{name} {statistic} to be flagged",
        )
    # The page refreshed itself: same document, new numbers.
    assert browser.execute_script("return window.__sameDocument") == "yes"
    cells = _row(browser, "merchant_risk", "psi")
    assert cells is not None
    assert cells["field"] == "merchant_risk"
    assert cells["stat"] == "PSI"
    assert cells["flag"] == "DRIFT"
    assert float(cells["value"]) > float(cells["threshold"]) > 0
    assert _flag(browser, "age", "psi") == "false"  # a control field does not drift

    def shown_as_served() -> bool:
        """What the page shows is what the API says (both change at most once per step)."""
        served = _status(sidecar)["models"][0]["windows"]["5m"]["drift"]
        want = next(d for d in served if (d["field"], d["statistic"]) == ("merchant_risk", "psi"))
        row = _row(browser, "merchant_risk", "psi")
        return row is not None and row["value"] == f"{want['value']:.3f}"

    wait_until(shown_as_served, timeout=WAIT, message="the page to show the served value")
    badge = browser.execute_script(
        "return document.querySelector('section.model .card-head .badge').innerText"
    )
    assert badge.startswith("drift in ")
    source = browser.execute_script(
        "return document.querySelector('table.sources td.mono').innerText"
    )
    assert source == episode.log.name
    # The 1m tab: its charts show the calm points, then the drift.
    wait_until(
        lambda: _history_points(sidecar, "1m") >= calm + 6, timeout=WAIT, message="drift history"
    )
    browser.execute_script("document.querySelector('button[data-window=\"1m\"]').click()")
    _until(
        browser,
        lambda d: d.execute_script(
            "return location.hash === '#window=1m'"
            " && document.querySelector('button.tab.active').textContent === '1m'"
            " && document.querySelectorAll('td.spark path.line').length > 0"
        ),
        "the 1m window's charts",
    )
    assert _flag(browser, "merchant_risk", "psi") == "true"
    screenshot(browser, "live-page.png", max_height=2400)
    assert console_errors(browser) == []


def test_label_values_from_the_log_are_shown_as_text(
    episode: drift_episode.Episode,
    start_sidecar: Callable[..., SidecarProcess],
    browser: Chrome,
) -> None:
    hostile = "<img src=x onerror=\"document.title='owned'\"><script>alert(1)</script>"
    lines = [
        line.replace(b'"model": "fraud-detector"', json.dumps({"model": hostile})[1:-1].encode())
        for line in episode.calm[:300]
    ]
    assert json.dumps(hostile).encode() in lines[0]
    drift_episode.append(episode.log, lines)
    sidecar = start_sidecar(episode.config)
    wait_until(lambda: _lines_read(sidecar) == len(lines), timeout=WAIT, message="the lines")
    browser.get(f"{sidecar.url}/")
    name = _until(
        browser,
        lambda d: d.execute_script(
            "const e = document.querySelector('section.model .model-name');"
            "return e && e.textContent"
        ),
        "the model's card",
    )
    assert name == hostile
    assert browser.execute_script("return document.querySelectorAll('script').length") == 1
    assert browser.execute_script("return document.querySelectorAll('main img').length") == 0
    assert "owned" not in browser.title
    assert console_errors(browser) == []


def test_the_replay_report_shows_the_alert_episodes_and_ranks_the_drifted_fields(
    episode: drift_episode.Episode, browser: Chrome, tmp_path: Path
) -> None:
    drift_episode.append(episode.log, episode.calm + episode.drifted)
    report = tmp_path / "replay.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "replay",
            "--config",
            str(episode.config),
            "--json",
            "--html",
            str(report),
            episode.log.name,
        ],
        cwd=episode.log.parent,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    episodes = json.loads(done.stdout)["alerts"]
    assert any(
        e["alert"] == "ModelFeatureDrift" and e["labels"]["field"] == "merchant_risk"
        for e in episodes
    )
    browser.get(report.as_uri())
    labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg.gantt text.glabel")]
    assert len(labels) == len(episodes)
    assert any(t.startswith("ModelFeatureDrift merchant_risk") for t in labels), labels
    heading = browser.find_element(By.CSS_SELECTOR, "#alerts h2").text
    assert heading == f"Alerts that would have fired ({len(episodes)})"
    ranked = browser.execute_script(
        "return [...document.querySelectorAll('#ranking tr[data-field]')].map(r => ["
        "r.dataset.field, r.dataset.window, r.classList.contains('drifted'),"
        " r.offsetParent !== null])"
    )
    # In the 1h window (the one the alerts read: thousands of records a step) exactly the
    # drifted fields and what follows from them are over threshold; the controls never are.
    drifted = {field for field, window, over, _ in ranked if window == "1h" and over}
    assert set(drift_episode.DRIFTED) <= drifted
    assert not set(drift_episode.CALM) & drifted
    shown = [field for field, _, _, visible in ranked if visible]
    assert shown[0] in {*drift_episode.DRIFTED, "prediction", "confidence", "latency_seconds"}
    figures = browser.find_elements(By.CSS_SELECTOR, "details[open] figure.drift.drifted")
    assert {f.get_attribute("data-field") for f in figures} >= set(drift_episode.DRIFTED)
    screenshot(browser, "replay-report.png", max_height=3000)
    assert console_errors(browser) == []


def test_the_live_page_of_a_regression_model_shows_mae_and_rmse(
    tmp_path: Path, start_sidecar: Callable[..., SidecarProcess], browser: Chrome
) -> None:
    """A model with a numeric label and no class: the page's other branch (MAE and RMSE against
    development instead of an error ratio) renders without a console error."""
    data = tailed_data(
        "demand.jsonl",
        regression_fields(model_name="demand", model_version="v7"),
        windows=["1m", "5m"],
        window_buckets=20,
        reference="reference.json",
    )
    rng = np.random.default_rng(8)

    config = parse_config(data)
    builder = ProfileBuilder(config.fields, config.quantiles, config.sketch_relative_accuracy)
    builder.add(regression_lines(rng, 3000, 2.0))
    (tmp_path / "reference.json").write_text(builder.build("2026-01-01T00:00:00+00:00").to_json())
    (tmp_path / "demand.jsonl").write_bytes(regression_lines(rng, 2000, 6.0))
    sidecar = start_sidecar(write_config(tmp_path, data))
    browser.get(f"{sidecar.url}/")
    labels = _until(
        browser,
        lambda d: (
            (
                found := d.execute_script(
                    "return [...document.querySelectorAll('.kpi-label')].map(e => e.textContent)"
                )
            )
            and "MAE" in found
            and found
        ),
        "the MAE tile",
    )
    assert "RMSE" in labels
    assert "error ratio" not in labels
    _until(
        browser,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('figcaption')]"
            ".some(e => e.textContent.startsWith('MAE and RMSE'))"
        ),
        "the MAE and RMSE chart",
    )
    assert console_errors(browser) == []
