"""The page in a real headless browser: start the app beside a running server, score the
prefilled row in Chromium, keep a screenshot. The browser test (tests/test_app_browser.py)
and the README's screenshot (`make screenshot`) both go through here.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright through its
executable path: Playwright's own browser builds cannot be downloaded here.

    python -m santander.app.browser --out docs/app.png     (a trained deploy/ needed)
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from santander import config
from santander.app.launch import app_command, app_environment

CHROMIUM_NAMES = ("chromium", "chromium-browser")
VIEWPORT = {"width": 1280, "height": 1500}   # Streamlit scrolls inside the page: all in view


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium on PATH: apt-get install chromium")


@contextlib.contextmanager
def running_app(server_url: str, repository: str | Path, log: Path, timeout: float = 90.0):
    """`santander app` on a free port until the block ends; yields the page's URL."""
    from santander.ops.launcher import free_port, stop_process
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as handle:
        process = subprocess.Popen(app_command("127.0.0.1", port),
                                   env=app_environment(server_url, repository),
                                   stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited ({process.returncode}): "
                                   f"{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer at {url} in {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(process)


def score_prefilled_row(app_url: str, screenshot: Path, timeout_ms: float = 60_000) -> float:
    """Open the page, press Score on the prefilled row, return the probability it shows (of
    the first version picked) and save a screenshot of the answer."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI and containers).
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(app_url, timeout=timeout_ms)
            button = page.get_by_role("button", name="Score", exact=True)
            button.wait_for(timeout=timeout_ms)
            button.click()
            shown = page.get_by_test_id("stMetricValue").first
            shown.wait_for(timeout=timeout_ms)
            try:                                  # the contributions chart, if the version has one
                page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(
                    timeout=10_000)
            except PlaywrightTimeout:
                pass
            page.wait_for_timeout(500)            # let the chart finish drawing
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            return float(shown.inner_text())
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    from santander.ops.launcher import running_server
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", default=str(config.DEPLOY_DIR))
    parser.add_argument("--out", default="docs/app.png")
    parser.add_argument("--workdir", default=".app-screenshot",
                        help="where the server and the app write their logs")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    with running_server(args.repository, workdir / "server") as server, \
            running_app(server.http_url, args.repository, workdir / "app.log") as app_url:
        probability = score_prefilled_row(app_url, Path(args.out))
    print(f"{args.out}: the page scored the prefilled row {probability:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
