"""What a waiting or idle learner costs the one who trains, on a real server in Debian's Chromium.

Tab A trains the MNIST CNN (5,000 digits, 3 epochs, a new seed each trial so nothing is reused
from the run store) and we time Start -> "Finished". Conditions, alternated trial by trial on one
server so that the machine's noise hits them alike:

- alone: A is the only tab;
- queued: 3 more tabs press Start on other settings and wait in the queue behind A;
- idle: 30 more sessions have the MNIST page open and do nothing.

Reports the median time of each condition and the ratios (goals: queued <= 1.15x, idle <= 1.10x).
The Chromium tabs share the machine's cores with the server, as in a small lab.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_waiting.py [--trials 3] [--idle 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import _IDLE_JS, Server, launch_browser  # noqa: E402

FINISHED = re.compile(r"Finished in")
LINK = "/mnist?n=5000&epochs=3&models=CNN&seed={seed}"


def open_page(browser, url: str):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_function(_IDLE_JS, timeout=300_000, polling=250)
    return ctx, page


def timed_run(browser, srv: Server, seed: int, others: list) -> float:
    ctx, page = open_page(browser, srv.url + LINK.format(seed=seed))
    page.get_by_role("button", name="Start training").click()
    t0 = time.perf_counter()
    for p in others:  # the queued learners press Start just after A
        p.get_by_role("button", name="Start training").click()
    page.get_by_text(FINISHED).first.wait_for(timeout=900_000)
    seconds = time.perf_counter() - t0
    ctx.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--queued", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"alone": [], "queued": [], "idle": []}
    seed = 1000
    with sync_playwright() as pw, Server(health_timeout=120, env={"DNN2_IDLE_SECONDS": "900"}) as srv:
        browser = launch_browser(pw)
        warm_ctx, _ = open_page(browser, srv.url + "/mnist")
        warm_ctx.close()
        for trial in range(args.trials):
            for condition in ("alone", "queued", "idle"):
                seed += 1
                extra = []
                if condition == "queued":
                    extra = [open_page(browser, srv.url + LINK.format(seed=50_000 + seed * 10 + i))
                             for i in range(args.queued)]
                elif condition == "idle":
                    extra = [open_page(browser, srv.url + "/mnist") for _ in range(args.idle)]
                pages = [p for _, p in extra] if condition == "queued" else []
                seconds = timed_run(browser, srv, seed, pages)
                times[condition].append(seconds)
                print(f"trial {trial + 1} {condition:6s} {seconds:6.1f} s", flush=True)
                for p in pages:  # the queued runs are not measured: stop them
                    stop = p.get_by_role("button", name="Stop")
                    if stop.count():
                        stop.first.click()
                for ctx, _ in extra:
                    ctx.close()
                time.sleep(3)
        browser.close()
    alone = statistics.median(times["alone"])
    print("| condition | median (s) | trials (s) | ratio to alone |\n|---|---:|---|---:|")
    for condition, values in times.items():
        med = statistics.median(values)
        print(f"| {condition} | {med:.1f} | {', '.join(f'{v:.1f}' for v in values)} | {med / alone:.2f}x |")


if __name__ == "__main__":
    main()
