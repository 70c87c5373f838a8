"""The run store in a class, against a real `streamlit run` server in Debian's Chromium.

1. Class burst: N learners (separate browser contexts = separate sessions) open the same link and
   press Start within a second. Reports how many jobs were trained (goal: 1) and each learner's
   time from pressing Start to seeing the finished run, first against last.
2. Refresh: a learner reloads the page of a finished run; seconds until it is back on screen.
3. Memory: server RSS after one learner trained 2 small runs, after L learners each trained 2,
   and after their sessions closed (goal: within 300 MB of the single learner's).

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_runs.py [--burst 30] [--learners 50]
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

from harness import _IDLE_JS, Server, launch_browser, rss_mb, workers_rss_mb  # noqa: E402

FINISHED = re.compile(r"Finished in")


def runs_in_store(srv: Server, experiment: str) -> int:
    [(count,)] = srv.store_rows("SELECT count(*) FROM runs WHERE experiment=? AND reference=0", (experiment,))
    return int(count)


def wait_idle(page, timeout: float = 300.0) -> None:
    page.wait_for_function(_IDLE_JS, timeout=timeout * 1000, polling=200)


def class_burst(browser, srv: Server, n: int, link: str, timeout: float) -> dict:
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(n)]
    pages = [c.new_page() for c in contexts]
    for p in pages:
        p.goto(srv.url + link, wait_until="commit")
    for p in pages:
        wait_idle(p, timeout)
    pressed: dict[int, float] = {}
    for i, p in enumerate(pages):  # as fast as the learners can click
        button = p.get_by_role("button", name="Start training")
        if button.count():
            button.click(no_wait_after=True)
        pressed[i] = time.perf_counter()
    done: dict[int, float] = {}
    deadline = time.perf_counter() + timeout
    while len(done) < n and time.perf_counter() < deadline:
        for i, p in enumerate(pages):
            if i not in done and p.get_by_text(FINISHED).count():
                done[i] = time.perf_counter() - pressed[i]
        time.sleep(0.2)
    jobs = runs_in_store(srv, "mnist")
    # refresh: one learner reloads the finished run's page
    p = pages[-1]
    t0 = time.perf_counter()
    p.reload(wait_until="commit")
    p.get_by_text(FINISHED).first.wait_for(timeout=timeout * 1000)
    refresh = time.perf_counter() - t0
    for c in contexts:
        c.close()
    first_press = min(pressed.values())
    from_first = {i: pressed[i] - first_press + t for i, t in done.items()}  # on the clock of the first press
    times = list(done.values())
    return {"learners": n, "finished": len(done), "jobs": jobs,
            "first": done.get(0, float("nan")), "last": done.get(n - 1, float("nan")),
            "press_spread": max(pressed.values()) - first_press,
            "all_done": max(from_first.values()) if from_first else float("nan"),
            "median": statistics.median(times) if times else float("nan"), "refresh": refresh}


def learners_train(browser, srv: Server, learners: int, timeout: float, start_seed: int) -> None:
    """Each learner: own context, two small runs (two seeds), one after the other; context kept open."""
    contexts = []
    for i in range(learners):
        ctx = browser.new_context(viewport={"width": 1300, "height": 900})
        page = ctx.new_page()
        for k in range(2):
            seed = start_seed + 2 * i + k
            for attempt in range(3):  # as a learner would: a page that hangs gets reloaded
                try:
                    page.goto(f"{srv.url}/mnist?n=500&epochs=1&models=Dense&seed={seed}", wait_until="commit")
                    wait_idle(page, 180)
                    if not page.get_by_text(FINISHED).count():
                        page.get_by_role("button", name="Start training").click(timeout=120_000)
                    page.get_by_text(FINISHED).first.wait_for(timeout=timeout * 1000)
                    break
                except Exception as exc:  # noqa: BLE001 - reported, then retried
                    print(f"  learner {i + 1} run {k + 1}: {type(exc).__name__}, reloading", flush=True)
            else:
                raise RuntimeError(f"learner {i + 1} could not train run {k + 1}")
        contexts.append(ctx)
        print(f"  learner {i + 1}/{learners}: 2 runs, server RSS {rss_mb(srv.proc.pid):.0f} MB, "
              f"workers {workers_rss_mb(srv.proc.pid):.0f} MB", flush=True)
    return contexts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--burst", type=int, default=30)
    ap.add_argument("--learners", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--skip-burst", action="store_true", help="only the memory part")
    ap.add_argument("--link", default="/mnist?n=2000&epochs=2&models=CNN&seed=7")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        burst = None
        if not args.skip_burst:
            with Server(health_timeout=120, env={"DNN2_IDLE_SECONDS": "600"}) as srv:
                warm = browser.new_page()
                warm.goto(srv.url + "/mnist", wait_until="commit")
                wait_idle(warm)
                warm.close()
                burst = class_burst(browser, srv, args.burst, args.link, args.timeout)
                print(burst, flush=True)
        with Server(health_timeout=120, env={"DNN2_IDLE_SECONDS": "600"}) as srv:
            one = learners_train(browser, srv, 1, args.timeout, 10_000)
            single, single_w = rss_mb(srv.proc.pid), workers_rss_mb(srv.proc.pid)
            for c in one:
                c.close()
            many = learners_train(browser, srv, args.learners - 1, args.timeout, 20_000)
            with_all, with_all_w = rss_mb(srv.proc.pid), workers_rss_mb(srv.proc.pid)
            for c in many:
                c.close()
            time.sleep(180)  # past Streamlit's 2-minute reconnection window, then the server's quiet collection
            after, after_w = rss_mb(srv.proc.pid), workers_rss_mb(srv.proc.pid)
            stored = runs_in_store(srv, "mnist")
        browser.close()
    if burst is None:
        burst = {"learners": 0, "jobs": 0, "finished": 0, "first": float("nan"), "median": float("nan"),
                 "last": float("nan"), "press_spread": float("nan"), "all_done": float("nan"), "refresh": float("nan")}
    rows.append(("class burst: learners pressing Start on one link", f"{burst['learners']}"))
    rows.append(("jobs trained (goal 1)", f"{burst['jobs']}"))
    rows.append(("learners who saw the finished run", f"{burst['finished']}/{burst['learners']}"))
    rows.append(("Start → finished run on screen: 1st learner to press / median / 30th (s)",
                 f"{burst['first']:.1f} / {burst['median']:.1f} / {burst['last']:.1f}"))
    rows.append(("seconds between the 1st and the last press (tabs on the same 2 cores)",
                 f"{burst['press_spread']:.1f}"))
    rows.append(("first press → every learner sees the result (s)", f"{burst['all_done']:.1f}"))
    rows.append(("refresh of a finished run → back on screen (s, goal < 2)", f"{burst['refresh']:.2f}"))
    rows.append(("server RSS after 1 learner trained 2 runs (MB): web process / training workers",
                 f"{single:.0f} / {single_w:.0f}"))
    rows.append((f"server RSS after {args.learners} learners trained 2 runs each (MB): web / workers",
                 f"{with_all:.0f} / {with_all_w:.0f}"))
    rows.append(("server RSS 180 s after their sessions closed (MB): web / workers", f"{after:.0f} / {after_w:.0f}"))
    rows.append(("growth over the single learner (MB, goal < 300): web / web + workers",
                 f"{after - single:.0f} / {after + after_w - single - single_w:.0f}"))
    rows.append(("runs in the store", f"{stored}"))
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
