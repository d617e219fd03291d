"""The report in a real browser: Debian's Chromium, headless, driven by Playwright (no browser download).

Locally the test is skipped where no Chromium is installed (``apt-get install -y chromium``); CI sets
``$INCENTIVES_REQUIRE_CHROMIUM`` and installs it, so there it fails instead. The screenshot is kept in
``$INCENTIVES_TEST_ARTIFACTS`` (CI: ``test-artifacts/``), else in the test's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As this machine's probe starts it: no sandbox (root), and nothing of Chromium's own calls home.
ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]


def chromium_or_skip() -> str:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = "no Chromium here: install Debian's (apt-get install -y chromium) to run the report's browser test"
    elif importlib.util.find_spec("playwright") is None:
        missing = "Playwright is not installed: pip install -e '.[dev]'"
    if missing is not None:
        if os.environ.get("INCENTIVES_REQUIRE_CHROMIUM"):
            pytest.fail(missing)
        pytest.skip(missing)
    return CHROMIUM


def test_the_report_of_the_bundled_quarter_renders_every_chart_offline(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    out = tmp_path / "out"
    for command in (["run", "--programs", "programs", "--facts", "examples/facts_2027Q1.csv", "--claims",
                     "examples/claims_2027Q1.csv", "--out", str(out)],
                    ["report", str(out), "--out", str(tmp_path / "report.html")]):
        done = subprocess.run([sys.executable, "-m", "incentives", *command], cwd=ROOT, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    artifacts = Path(os.environ.get("INCENTIVES_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGUMENTS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            requests: list[str] = []
            page.on("console", lambda message: problems.append(f"{message.type}: {message.text}")
                    if message.type in ("error", "warning") else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("request", lambda request: requests.append(request.url))
            page.goto((tmp_path / "report.html").as_uri())
            charts = page.eval_on_selector_all(
                "section .chart svg", "svgs => svgs.map(svg => {const box = svg.getBoundingClientRect(); "
                "return [svg.closest('section').id, box.width, box.height, "
                "svg.querySelectorAll('path, rect, line, text').length];})")
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()
    assert [chart[0] for chart in charts] == ["statuses", "by_tier", "attainment", "gaps", "mdf"]
    for key, width, height, marks in charts:
        assert width > 100 and height > 100 and marks > 20, (key, width, height, marks)
    assert problems == []
    assert requests == [(tmp_path / "report.html").as_uri()]  # the page itself, nothing else
    assert (artifacts / "report.png").stat().st_size > 50_000
