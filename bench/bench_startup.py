"""Startup: from launching `make run`'s command (on a free port) to a healthy server and to the
home page's first complete paint in Debian's Chromium.

Each repetition starts a fresh `streamlit run app.py --server.headless true --server.port <free>`
(DNN2_OFFLINE=1), polls /_stcore/health every 50 ms, then opens / in an already running
Chromium and waits for the h1 (first content) and for Streamlit to finish the script run
(complete paint). The browser launch is not counted: a learner's browser is already open.
A last row reloads the home page on the now warm server, to separate the cold start from the page.

Usage: .venv/bin/python bench/bench_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import ARTIFACTS, Server, launch_browser, page_problems, wait_for_app_idle  # noqa: E402


def one_start(browser) -> dict[str, float]:
    with Server(address=None, log_path=ARTIFACTS / "bench_startup_server.log") as server:
        healthy = server.healthy_after
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(server.url + "/", wait_until="commit")
            page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=60_000)
            first_content = time.perf_counter() - server.started_at
            wait_for_app_idle(page, 60)
            painted = time.perf_counter() - server.started_at
            problems = page_problems(page)
            if problems.exceptions or problems.errors:
                raise RuntimeError(f"the home page failed: {problems}")
            # The same page again in a new session: what the first paint costs once imports are warm.
            t0 = time.perf_counter()
            page.goto(server.url + "/", wait_until="commit")
            wait_for_app_idle(page, 60)
            warm = time.perf_counter() - t0
        finally:
            page.close()
    return {"healthy": healthy, "h1": first_content, "painted": painted, "warm": warm}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            for i in range(args.repeats):
                runs.append(one_start(browser))
                print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), flush=True)
        finally:
            browser.close()

    rows = [("`streamlit run` launched → /_stcore/health ok", "healthy"),
            ("launched → home h1 visible in Chromium", "h1"),
            ("launched → home script finished, page painted", "painted"),
            ("warm server: reload home → painted (new session)", "warm")]
    print(f"\n| startup ({args.repeats} runs) | min (s) | median (s) |")
    print("|---|---:|---:|")
    for label, key in rows:
        values = [r[key] for r in runs]
        print(f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
