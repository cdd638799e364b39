"""A realistic prediction log for benchmarks: deterministic, seeded, written in blocks.

The shape a user's model writes, not the simulator's tidy one: an ISO-8601 ``ts`` string (or
epoch seconds / milliseconds), a uuid request id, a score, a class, a confidence, a latency in
milliseconds, ground truth on a third of the lines, and five features of which two are
categorical. A 0.1% share of lines is malformed, in six kinds equally likely:

- ``not_json``: a stray text line (a traceback, an access log line);
- ``truncated``: a record cut short before its closing brace;
- ``invalid_utf8``: a record with a byte that is not UTF-8 inside a string;
- ``string_number``: a numeric feature is the string ``"n/a"``;
- ``wrong_type``: ``age`` is ``true`` or ``latency_ms`` an object;
- ``missing_field``: ``score`` or a feature is absent.

One line (~330 bytes)::

    {"ts": "2026-11-30T14:03:21.123Z", "model": "fraud-detector", "version": "v3",
     "request_id": "6f1c0b2e-4a9d-4c51-8e0f-2b7d1a9c3e44", "score": 0.8312,
     "predicted_class": "fraud", "confidence": 0.8312, "latency_ms": 12.53,
     "ground_truth": "fraud", "features": {"amount": 123.45, "age": 35, "country": "US",
     "device": "mobile", "merchant_risk": 0.213}}

Line ``i`` is drawn from a generator seeded by ``(seed, i // BLOCK)``, so any block can be
made on its own (a live writer makes them as it goes) and the same arguments give the same
bytes. ``versions`` > 1 spreads lines over that many model versions (to scale the series count).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 65_536
START_TS = 1_764_511_200.0  # 2025-11-30T14:00:00Z
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "IT", "MX")
COUNTRY_SHARES = (0.30, 0.10, 0.10, 0.08, 0.12, 0.06, 0.05, 0.05, 0.04, 0.04, 0.03, 0.03)
DEVICES = ("mobile", "desktop", "tablet")
CLASSES = ("legit", "fraud")
MALFORMED = (
    "not_json",
    "truncated",
    "invalid_utf8",
    "string_number",
    "wrong_type",
    "missing_field",
)
NOT_JSON = (
    "Traceback (most recent call last):",
    '10.0.3.7 - - [30/Nov/2025:14:03:21 +0000] "GET /healthz HTTP/1.1" 200 2',
    "WARNING worker 3 restarted after OOM",
)
TS_FORMATS = ("iso", "iso-offset", "epoch-s", "epoch-ms")


@dataclass(frozen=True)
class Shape:
    seed: int = 0
    ts_format: str = "iso"  # one of TS_FORMATS
    rate: float = 10_000.0  # lines per second of log time
    start_ts: float = START_TS
    malformed_ratio: float = 0.001
    versions: int = 1
    countries: int = len(COUNTRIES)  # more spreads half the traffic over made-up codes
    # Every line a new model, version, predicted class and country: the cardinality attack the
    # caps (max_model_versions, category_cap) must absorb without the work or memory growing.
    unique: bool = False


def _timestamps(ts: np.ndarray, ts_format: str) -> list[str]:
    if ts_format.startswith("iso"):
        stamps = np.datetime_as_string(
            (ts * 1000).astype("int64").astype("datetime64[ms]"), unit="ms", timezone="UTC"
        )
        text = [f'"{s}"' for s in stamps.tolist()]
        if ts_format == "iso-offset":
            text = [s.replace('Z"', '+00:00"') for s in text]
        return text
    if ts_format == "epoch-ms":
        return [str(v) for v in (ts * 1000).astype("int64").tolist()]
    return [f"{v:.3f}" for v in ts.tolist()]


def block(index: int, shape: Shape, first: int = 0, count: int = BLOCK) -> bytes:
    """Lines ``index * BLOCK + first`` .. ``+ count`` (``first + count <= BLOCK``)."""
    rng = np.random.default_rng([shape.seed, index])
    n = BLOCK
    line_no = index * BLOCK + np.arange(n)
    ts = shape.start_ts + line_no / shape.rate
    amount = np.round(rng.lognormal(4.0, 1.2, n), 2)
    age = rng.integers(18, 90, n)
    risk = np.round(rng.beta(2.0, 6.0, n), 3)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARES)
    names = COUNTRIES
    if shape.countries > len(COUNTRIES):
        names = COUNTRIES + tuple(f"Z{i:04d}" for i in range(shape.countries - len(COUNTRIES)))
        extra = rng.random(n) < 0.5
        country[extra] = rng.integers(len(COUNTRIES), shape.countries, int(extra.sum()))
    device = rng.choice(len(DEVICES), n, p=(0.6, 0.3, 0.1))
    logit = -4.0 + 0.004 * amount + 4.0 * risk + rng.normal(0.0, 0.6, n)
    score = np.round(1.0 / (1.0 + np.exp(-logit)), 4)
    fraud = score >= 0.5
    confidence = np.round(np.where(fraud, score, 1.0 - score), 4)
    truth = np.where(rng.random(n) < np.clip(score + rng.normal(0, 0.1, n), 0, 1), 1, 0)
    has_truth = rng.random(n) < 1 / 3
    latency = np.round(rng.gamma(2.0, 6.0, n), 2)
    ids = rng.integers(0, 2**63, (n, 2), dtype=np.int64)
    bad = rng.random(n) < shape.malformed_ratio
    bad_kind = rng.integers(0, len(MALFORMED), n)
    version = (line_no % shape.versions) if shape.versions > 1 else np.zeros(n, dtype=np.int64)
    stamps = _timestamps(ts, shape.ts_format)

    lines: list[str] = []
    for i in range(first, first + count):
        a, b = int(ids[i, 0]), int(ids[i, 1])
        rid = f"{a >> 31:08x}-{(a >> 15) & 0xFFFF:04x}-4{a & 0xFFF:03x}-"
        rid += f"{b >> 47:04x}-{b & 0xFFFFFFFFFFFF:012x}"
        gt = f', "ground_truth": "{CLASSES[truth[i]]}"' if has_truth[i] else ""
        ver = f"v{version[i] + 3}"
        features = (
            f'"amount": {amount[i]}, "age": {age[i]}, "country": "{names[country[i]]}", '
            f'"device": "{DEVICES[device[i]]}", "merchant_risk": {risk[i]}'
        )
        score_part = f'"score": {score[i]}, '
        latency_part = f'"latency_ms": {latency[i]}'
        kind = MALFORMED[bad_kind[i]] if bad[i] else ""
        if kind == "not_json":
            lines.append(NOT_JSON[i % len(NOT_JSON)])
            continue
        if kind == "string_number":
            features = features.replace(f'"amount": {amount[i]}', '"amount": "n/a"')
        elif kind == "wrong_type":
            if i % 2:
                features = features.replace(f'"age": {age[i]}', '"age": true')
            else:
                latency_part = '"latency_ms": {"p50": 3}'
        elif kind == "missing_field":
            if i % 2:
                score_part = ""
            else:
                features = features.replace(f'"device": "{DEVICES[device[i]]}", ', "")
        model, predicted = "fraud-detector", CLASSES[int(fraud[i])]
        if shape.unique:
            n_line = int(line_no[i])
            model, ver, predicted = f"m{n_line:x}", f"v{n_line:x}", f"c{n_line:x}"
            here = f'"country": "{names[country[i]]}"'
            features = features.replace(here, f'"country": "K{n_line:x}"')
        line = (
            f'{{"ts": {stamps[i]}, "model": "{model}", "version": "{ver}", '
            f'"request_id": "{rid}", {score_part}"predicted_class": "{predicted}", '
            f'"confidence": {confidence[i]}, {latency_part}{gt}, "features": {{{features}}}}}'
        )
        if kind == "truncated":
            line = line[: len(line) // 2]
        elif kind == "invalid_utf8":
            line = line.replace(f'"{model}"', f'"{model}\udcff"', 1)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8", errors="surrogateescape")


def blocks(lines: int, shape: Shape, first_line: int = 0) -> Iterator[bytes]:
    """Lines ``first_line`` .. ``first_line + lines`` in pieces of at most one block."""
    position, end = first_line, first_line + lines
    while position < end:
        index, offset = divmod(position, BLOCK)
        count = min(BLOCK - offset, end - position)
        yield block(index, shape, offset, count)
        position += count


def write_log(path: Path, lines: int, shape: Shape) -> int:
    """Write ``lines`` lines; returns the byte count."""
    written = 0
    with open(path, "wb") as f:
        for data in blocks(lines, shape):
            f.write(data)
            written += len(data)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("output")
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ts", choices=TS_FORMATS, default="iso")
    parser.add_argument("--versions", type=int, default=1)
    parser.add_argument("--countries", type=int, default=len(COUNTRIES))
    parser.add_argument("--malformed-ratio", type=float, default=0.001)
    parser.add_argument(
        "--unique", action="store_true", help="a new model, version, class and country per line"
    )
    args = parser.parse_args()
    shape = Shape(
        seed=args.seed,
        ts_format=args.ts,
        versions=args.versions,
        countries=args.countries,
        malformed_ratio=args.malformed_ratio,
        unique=args.unique,
    )
    size = write_log(Path(args.output), args.lines, shape)
    print(f"{args.output}: {args.lines:,} lines, {size / args.lines:.0f} bytes/line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
