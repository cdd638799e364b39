"""Headless Chromium for browser tests: Debian's chromium driven through Debian's chromedriver.

Both come from scripts/install-system-deps.sh (packages ``chromium`` and ``chromium-driver``,
built from the same release), so nothing is downloaded at test time. The flags keep Chromium
off the network (this machine has none but loopback) and out of any profile but a fresh one.
Screenshots go to ``test-artifacts/`` (git-ignored; ``TEST_ARTIFACTS`` moves it) for a reviewer;
with ``UPDATE_SCREENSHOTS=1`` they are also copied to docs/images/ for the README.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.harness import tool

ROOT = Path(__file__).resolve().parent.parent
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
)
WIDTH = 1400


def artifacts() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = tool("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDTH},1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=tool("chromedriver"), log_output=str(profile.parent / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Everything the page logged at SEVERE: console.error, uncaught exceptions, failed loads
    (a 404 for an asset, a refused connection)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [e for e in entries if e.get("level") == "SEVERE"]


def screenshot(driver: webdriver.Chrome, name: str, max_height: int = 6000) -> Path:
    """The whole page (up to ``max_height`` pixels) as a PNG in the artifact directory, and in
    docs/images/ too with UPDATE_SCREENSHOTS=1."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": min(height, max_height), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": clip},
    )
    path = artifacts() / name
    path.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, ROOT / "docs" / "images" / name)
    return path
