"""Open an HTML file in Debian's real headless chromium with networking off, the way a person
would look at a report, and read back what the page drew.

Why selenium with /usr/bin/chromedriver: Debian ships the driver matching its chromium, and
selenium gives the browser's console log, the DevTools performance log (failed requests) and a
script runner without a protocol client of ours. Absent chromium skips, except in CI (fails).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("INTERCOM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("INTERCOM_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")

# What every plotly chart on the page drew, read from the DOM after plotly.js ran: the legend
# entries and, per drawn trace, its drawn points (bars and markers are `.point` elements).
_READ_CHARTS = """
const out = {};
for (const gd of document.querySelectorAll('.js-plotly-plot')) {
  const traces = Array.from(gd.querySelectorAll('.cartesianlayer g.trace'));
  out[gd.id] = {
    legend: Array.from(gd.querySelectorAll('.legend .traces .legendtext')).map(e => e.textContent),
    points: traces.map(t => t.querySelectorAll('.point').length),
    svg: gd.querySelectorAll('svg.main-svg').length,
  };
}
return out;
"""


@dataclass
class Page:
    """What the browser saw: problems (console errors, failed or any network requests) and charts."""

    console: list[dict[str, Any]] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""

    @property
    def problems(self) -> list[str]:
        out = [f"console {e.get('level')}: {e.get('message')}" for e in self.console]
        out += [f"failed request: {r}" for r in self.failed_requests]
        out += [f"network request: {r}" for r in self.network_requests]
        return out


def chromium_or_skip() -> None:
    """Skip when chromium or its driver is missing; in CI (CI=true) that is a failure."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required in CI", pytrace=False)
    pytest.skip(reason)


@contextmanager
def offline_browser() -> Iterator[Any]:
    """A headless chromium whose network is off: a dead proxy for every host and DevTools' offline mode."""
    chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,2400",
        "--proxy-server=http://127.0.0.1:9",  # nothing listens there: every fetch fails
        "--proxy-bypass-list=<-loopback>",
        "--no-first-run",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, path: Path, settle_seconds: float = 10.0) -> Page:
    """Load `path`, wait until every plotly chart drew, and collect what the page did."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what an earlier page left
    driver.get_log("performance")
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, settle_seconds).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
        and d.execute_script(
            "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".every(g => g.querySelector('svg.main-svg') !== null)"
        )
    )
    page = Page()
    page.console = [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "WARNING")]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.loadingFailed":
            page.failed_requests.append(f"{params.get('errorText')} ({params.get('requestId')})")
        elif message.get("method") == "Network.requestWillBeSent":
            url = str(params.get("request", {}).get("url", ""))
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                page.network_requests.append(url)
    page.charts = driver.execute_script(_READ_CHARTS)
    page.text = driver.execute_script("return document.body.innerText")
    return page
