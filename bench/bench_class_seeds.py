"""A class that does not share: 30 learners press Start at once, each with their own seed, on a real
`streamlit run` server in Debian's Chromium. Nothing is shared, so every run trains.

Reports, per server configuration (``workers``: fit() in a worker process; ``threads``:
DNN2_WORKERS=0, fit() in a thread of the web process), learners served per minute (first press to
the last result on screen), the per-job training time (median, from the run store), the slowest
learner's wait, and how much the web process grew (its RSS after the bursts against after the
first page load: what it keeps of the class's training). Configurations alternate round by round;
both servers are up throughout.

``--page cats`` runs the class on cats vs dogs (from scratch and a frozen VGG16 on 200 real photos at
64 px): there the worker also decodes the photos, loads the base and extracts the features.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_class_seeds.py [--learners 30] [--rounds 1]
       [--page mnist|cats]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import _IDLE_JS, Server, launch_browser, rss_mb  # noqa: E402

FINISHED = re.compile(r"Finished in")
LINKS = {"mnist": "/mnist?n=1000&epochs=2&models=Dense&seed={seed}",
         "cats": "/cats_dogs?models=From+scratch,VGG16+frozen&size=64&n=200&nval=100&epochs=2&seed={seed}"}
CONFIGS = {"workers": {}, "threads": {"DNN2_WORKERS": "0"}}


def job_seconds(srv: Server) -> list[float]:
    rows = srv.store_rows("SELECT started_at, finished_at FROM runs WHERE reference=0 AND state='done' "
                          "AND started_at IS NOT NULL")
    return [f - s for s, f in rows if f and s]


def burst(browser, srv: Server, link: str, learners: int, first_seed: int, timeout: float) -> dict:
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(learners)]
    pages = [c.new_page() for c in contexts]
    for i, p in enumerate(pages):
        p.goto(srv.url + link.format(seed=first_seed + i), wait_until="commit")
    for p in pages:
        p.wait_for_function(_IDLE_JS, timeout=timeout * 1000, polling=250)
    pressed = {}
    for i, p in enumerate(pages):
        p.get_by_role("button", name="Start training").click(no_wait_after=True, timeout=300_000)
        pressed[i] = time.perf_counter()
    done: dict[int, float] = {}
    deadline = time.perf_counter() + timeout
    while len(done) < learners and time.perf_counter() < deadline:
        for i, p in enumerate(pages):
            if i not in done and p.get_by_text(FINISHED).count():
                done[i] = time.perf_counter()
        time.sleep(0.25)
    for c in contexts:
        c.close()
    t0 = min(pressed.values())
    span = (max(done.values()) - t0) if done else float("nan")
    waits = [done[i] - pressed[i] for i in done]
    return {"served": len(done), "span": span, "per_min": len(done) / span * 60 if done else 0.0,
            "slowest": max(waits) if waits else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--configs", default="workers,threads")
    ap.add_argument("--page", choices=sorted(LINKS), default="mnist")
    args = ap.parse_args()
    link = LINKS[args.page]
    from playwright.sync_api import sync_playwright

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    results: dict[str, list[dict]] = {c: [] for c in configs}
    # A learner may have one run training and one waiting: each session here has one.
    env = {"DNN2_IDLE_SECONDS": "1200", "DNN2_MAX_WAITING": str(args.learners + 5)}
    with sync_playwright() as pw, ExitStack() as stack:
        servers = {c: stack.enter_context(Server(health_timeout=120, env={**env, **CONFIGS[c]},
                                                 log_path=ROOT / "artifacts" / f"server-{c}.log")) for c in configs}
        browser = launch_browser(pw)
        for srv in servers.values():
            ctx = browser.new_context()
            warm = ctx.new_page()
            warm.goto(srv.url + link.split("?")[0], wait_until="commit")
            warm.wait_for_function(_IDLE_JS, timeout=300_000, polling=250)
            ctx.close()
        rss0 = {c: rss_mb(srv.proc.pid) for c, srv in servers.items()}
        seed = 100
        for r in range(args.rounds):
            for config, srv in servers.items():
                res = burst(browser, srv, link, args.learners, seed, args.timeout)
                seed += args.learners
                results[config].append(res)
                print(f"round {r + 1} {config}: {res}", flush=True)
        per_job = {c: job_seconds(srv) for c, srv in servers.items()}
        grew = {c: rss_mb(srv.proc.pid) - rss0[c] for c, srv in servers.items()}
        browser.close()
    print(f"page: {args.page}")
    print("| server | learners served | learners per minute | per-job training time, median (s) | "
          "slowest learner's wait (s) | web process grew (MB) |\n|---|---:|---:|---:|---:|---:|")
    for config in configs:
        rs = results[config]
        print(f"| {config} | {sum(r['served'] for r in rs)}/{args.learners * len(rs)} | "
              f"{statistics.median(r['per_min'] for r in rs):.1f} | "
              f"{statistics.median(per_job[config]) if per_job[config] else float('nan'):.1f} | "
              f"{statistics.median(r['slowest'] for r in rs):.1f} | {grew[config]:+.0f} |")


if __name__ == "__main__":
    main()
