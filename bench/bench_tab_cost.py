"""What one learner's tab costs the machine, in CPU seconds: a Start that queues, a second of
waiting in the queue, a plain rerun. On a real server in Debian's Chromium.

bench_waiting.py times the training job itself, which moves with the machine's noise by more than
these costs. CPU seconds barely do, so this check compares two versions of the page reliably: the
web process's and Chromium's CPU are read from /proc around each action, less what they use idle,
and Chromium's own counters (CDP Performance.getMetrics: script, style, layout) say where a tab's
time went.

A closed tab's long run (60,000 digits, 20 epochs) holds the training slot, so every Start queues
behind it, as in a class; it is stopped after each round, so only the server being measured trains.
Per checkout (``--roots``, alternated round by round, each on its own
server):

- start: a tab with its own settings presses Start and the queue view is drawn (then Stop);
- waiting: ``--tabs`` tabs wait in the queue for ``--window`` seconds: CPU per tab per minute;
- rerun: a tab that waits for nothing reruns the MNIST page (Streamlit's "r").

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_tab_cost.py [--roots .,../other]
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

from bench_waiting import open_page, settle_browsers  # noqa: E402
from harness import Server, browser_pids, cpu_seconds, launch_browser, wait_for_app_idle, wait_for_rerun  # noqa: E402

HOLD = "/mnist?n=60000&epochs=20&models=CNN&seed={seed}"
QUEUED = "/mnist?n=5000&epochs=3&models=CNN&seed={seed}"
WAITING = re.compile(r"Waiting for a free training slot")
METRICS = ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration", "TaskDuration")


def machine_cpu(srv: Server) -> dict[str, float]:
    return {"web": cpu_seconds(srv.proc.pid), "chromium": sum(cpu_seconds(p) for p in browser_pids())}


def idle_rate(srv: Server, seconds: float) -> dict[str, float]:
    """CPU seconds per second the web process and Chromium use with nothing happening (the
    holder's progress, Chromium's own timers): subtracted from every measurement."""
    before, t0 = machine_cpu(srv), time.perf_counter()
    time.sleep(seconds)
    after, dt = machine_cpu(srv), time.perf_counter() - t0
    return {k: (after[k] - before[k]) / dt for k in before}


def counted(ctx, page):
    """A CDP session on ``page`` with Chromium's performance counters on (``tab_metrics`` reads them)."""
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    return cdp


def tab_metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] in METRICS}


def measured(srv: Server, idle: dict[str, float], cdp, action) -> dict[str, float]:
    """CPU seconds of ``action`` (which returns when its page has finished) and of Chromium's
    drawing after it, less the idle rate; with the tab's own CDP durations."""
    before, t0, tab0 = machine_cpu(srv), time.perf_counter(), tab_metrics(cdp)
    action()
    settle_browsers()
    after, dt, tab1 = machine_cpu(srv), time.perf_counter() - t0, tab_metrics(cdp)
    out = {k: after[k] - before[k] - idle[k] * dt for k in before}
    out.update({k: tab1[k] - tab0[k] for k in METRICS})
    return out


def hold_the_slot(browser, srv: Server, seed: int = 7) -> str:
    """Start the long run and close its tab; returns its link (``release`` stops it)."""
    link = HOLD.format(seed=seed)
    ctx, page = open_page(browser, srv.url + link)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"epoch \d+/")).first.wait_for(timeout=300_000)
    ctx.close()  # the run trains on (DNN2_IDLE_SECONDS is long), as a closed tab's run does
    return link


def release(browser, srv: Server, link: str) -> None:
    """Stop the long run, so that only the server being measured trains (one holder at a time)."""
    ctx, page = open_page(browser, srv.url + link, settle=False)
    page.get_by_role("button", name="Stop").first.click()
    page.get_by_text(re.compile(r"Stopped")).first.wait_for(timeout=120_000)
    ctx.close()


def one_round(browser, srv: Server, args, seed: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {"start": [], "waiting": [], "rerun": []}
    settle_browsers()
    idle = idle_rate(srv, 10)
    for i in range(args.starts):
        ctx, page = open_page(browser, srv.url + QUEUED.format(seed=seed + i))
        cdp = counted(ctx, page)

        def press(page=page):
            page.get_by_role("button", name="Start training").click()
            page.get_by_text(WAITING).first.wait_for(timeout=60_000)
            wait_for_app_idle(page, 60)
        out["start"].append(measured(srv, idle, cdp, press))
        page.get_by_role("button", name="Stop").first.click()
        wait_for_app_idle(page, 60)
        ctx.close()
    ctx, page = open_page(browser, srv.url + QUEUED.format(seed=seed + 100))
    cdp = counted(ctx, page)
    for _ in range(args.reruns):
        out["rerun"].append(measured(srv, idle, cdp, lambda: wait_for_rerun(page, lambda: page.keyboard.press("r"))))
    ctx.close()
    tabs = [open_page(browser, srv.url + QUEUED.format(seed=seed + 200 + i)) for i in range(args.tabs)]
    for _, page in tabs:
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(WAITING).first.wait_for(timeout=60_000)
    settle_browsers()
    cdps = [counted(ctx, page) for ctx, page in tabs]
    before, tab0 = machine_cpu(srv), [tab_metrics(c) for c in cdps]
    t0 = time.perf_counter()
    time.sleep(args.window)
    after, dt, tab1 = machine_cpu(srv), time.perf_counter() - t0, [tab_metrics(c) for c in cdps]
    per_min = 60 / (dt * args.tabs)
    row = {k: (after[k] - before[k] - idle[k] * dt) * per_min for k in before}
    row.update({k: sum(b[k] - a[k] for a, b in zip(tab0, tab1)) * per_min for k in METRICS})
    out["waiting"].append(row)
    for ctx, page in tabs:
        page.get_by_role("button", name="Stop").first.click()
    time.sleep(1)
    for ctx, _ in tabs:
        ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", default=str(ROOT), help="checkouts to compare, comma-separated (each its own server)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--starts", type=int, default=3, help="Starts measured per round")
    ap.add_argument("--reruns", type=int, default=3, help="reruns measured per round")
    ap.add_argument("--tabs", type=int, default=3, help="tabs waiting in the queue together")
    ap.add_argument("--window", type=float, default=30.0, help="seconds the waiting tabs are measured")
    args = ap.parse_args()
    from contextlib import ExitStack

    from playwright.sync_api import sync_playwright

    roots = [Path(r).resolve() for r in args.roots.split(",") if r.strip()]
    names = [r.name if r != ROOT else "this checkout" for r in roots]
    results = {n: {"start": [], "waiting": [], "rerun": []} for n in names}
    with sync_playwright() as pw, ExitStack() as stack:
        servers = {n: stack.enter_context(Server(root=r, health_timeout=120, env={"DNN2_IDLE_SECONDS": "3600"},
                                                 log_path=ROOT / "artifacts" / f"server-tabcost-{i}.log"))
                   for i, (n, r) in enumerate(zip(names, roots))}
        browser = launch_browser(pw)
        for rnd in range(args.rounds):
            for name, srv in servers.items():
                holder = hold_the_slot(browser, srv, seed=7 + rnd)
                got = one_round(browser, srv, args, seed=1000 * (rnd + 1))
                release(browser, srv, holder)
                for k, rows in got.items():
                    results[name][k] += rows
                print(f"round {rnd + 1} {name}: " + "; ".join(
                    f"{k} web {statistics.median(r['web'] for r in rows):.3f} chromium "
                    f"{statistics.median(r['chromium'] for r in rows):.3f}" for k, rows in got.items()), flush=True)
        browser.close()
    print("\nCPU seconds, median (less the idle rate); the tab's own CDP durations: script / style / layout / all tasks"
          "\n| checkout | action | n | web process | Chromium | tab: script / style / layout / tasks |"
          "\n|---|---|---:|---:|---:|---|")
    for name in names:
        for action, rows in results[name].items():
            unit = " per minute" if action == "waiting" else ""
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"| {name} | {action}{unit} | {len(rows)} | {med['web']:.3f} | {med['chromium']:.3f} | "
                  + " / ".join(f"{med[k]:.3f}" for k in METRICS) + " |")


if __name__ == "__main__":
    main()
