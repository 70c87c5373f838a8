"""Classroom load run against a real `streamlit run` server, in Debian's Chromium.

20 learner sessions open the MNIST page; 5 of them start a short training. Reports the time
each page took to render (p50/p95), the most jobs seen running at once (must equal the gate's
N), whether all 5 runs completed, whether any session saw another's run, and the server's
memory before, at peak and after every session closed.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_classroom.py [--sessions 20] [--trainers 5]
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

from harness import _IDLE_JS, Server, launch_browser, rss_mb  # noqa: E402

from dnn2core.training import default_max_jobs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--trainers", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    n_slots = default_max_jobs()
    from playwright.sync_api import sync_playwright

    with Server(health_timeout=120) as srv, sync_playwright() as pw:
        mem_start = rss_mb(srv.proc.pid)
        browser = launch_browser(pw)
        # warm the server (imports, MNIST load, model summaries) with one visit, as a teacher would
        warm = browser.new_page()
        warm.goto(srv.url + "/mnist", wait_until="commit")
        warm.wait_for_function(_IDLE_JS, timeout=300_000, polling=200)
        warm.close()
        pages, started = [], []
        for i in range(args.sessions):
            p = browser.new_page(viewport={"width": 1300, "height": 900})
            seed = 100 + i
            started.append(time.perf_counter())
            p.goto(f"{srv.url}/mnist?n=1000&epochs=2&models=Dense&seed={seed}", wait_until="commit")
            pages.append(p)
        rendered: dict[int, float] = {}
        deadline = time.perf_counter() + args.timeout
        while len(rendered) < len(pages) and time.perf_counter() < deadline:
            for i, p in enumerate(pages):
                if i not in rendered and p.evaluate(_IDLE_JS) and p.locator("h1").count():
                    rendered[i] = time.perf_counter() - started[i]
            time.sleep(0.1)
        times = sorted(rendered.values())
        print(f"rendered {len(rendered)}/{len(pages)} sessions", flush=True)

        trainers = pages[: args.trainers]
        for p in trainers:
            p.get_by_role("button", name="Start training").click()
        max_running, finished, queue_seen = 0, set(), 0
        t0 = time.perf_counter()
        while len(finished) < len(trainers) and time.perf_counter() - t0 < args.timeout:
            running = 0
            for i, p in enumerate(trainers):
                text = p.inner_text('[data-testid="stMain"]')
                running += "🏃" in text
                queue_seen += "Waiting for a free training slot" in text
                if "Finished in" in text:
                    finished.add(i)
            max_running = max(max_running, running)
            print(f"  t={time.perf_counter() - t0:5.1f}s running={running} finished={len(finished)}", flush=True)
            time.sleep(0.5)
        train_wall = time.perf_counter() - t0
        mem_peak = rss_mb(srv.proc.pid)

        leaks = []
        for i, p in enumerate(pages):
            text = p.inner_text('[data-testid="stMain"]')
            labels = re.findall(r"Dense · 2 ep · batch 32 · rmsprop 0.001 · 1,000 digits · seed (\d+)", text)
            own = str(100 + i)
            if i < args.trainers and set(labels) != {own}:
                leaks.append(f"session {i} shows runs {labels}")
            if i >= args.trainers and labels:
                leaks.append(f"non-training session {i} shows runs {labels}")
        for p in pages:
            p.close()
        browser.close()
        time.sleep(10)
        mem_after = rss_mb(srv.proc.pid)

    p50 = statistics.median(times) if times else float("nan")
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)] if times else float("nan")
    print(f"| figure | value |\n|---|---|")
    print(f"| sessions rendered | {len(rendered)}/{args.sessions} |")
    print(f"| time to render, p50 / p95 (s) | {p50:.1f} / {p95:.1f} |")
    print(f"| training slots N (gate) | {n_slots} |")
    print(f"| most jobs seen running at once | {max_running} |")
    print(f"| queue shown to waiting learners | {'yes' if queue_seen else 'no'} |")
    print(f"| runs completed | {len(finished)}/{args.trainers} (in {train_wall:.0f} s) |")
    print(f"| sessions that saw another's run | {len(leaks)} |")
    print(f"| server RSS: start / peak / 10 s after all closed (MB) | {mem_start:.0f} / {mem_peak:.0f} / {mem_after:.0f} |")
    for leak in leaks:
        print("  ", leak)


if __name__ == "__main__":
    main()
