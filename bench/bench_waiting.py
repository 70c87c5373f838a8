"""What a waiting or idle learner costs the one who trains, on a real server in Debian's Chromium.

Tab A trains the MNIST CNN (5,000 digits, 3 epochs, a new seed each trial so nothing is reused
from the run store) and we time Start -> "Finished". Conditions, alternated trial by trial on one
server so that the machine's noise hits them alike:

- alone: A is the only tab;
- queued: 3 more tabs press Start on other settings and wait in the queue behind A;
- idle: 30 more sessions have the MNIST page open and do nothing.

Reports the median time of each condition and the ratios (goals: queued <= 1.15x, idle <= 1.10x).
The Chromium tabs share the machine's cores with the server, as in a small lab. Every tab has
finished drawing before A presses Start (Chromium quiet): the learners' pages were open before.
The CPU time of the web process, the training worker and Chromium during A's run is reported too,
and where A's time went (``phases``, from the run store's clocks): Start -> the job's process began
it -> its fit began -> the epochs -> stored -> the page showed "Finished".

Each server configuration (``--configs``: ``workers``, the default, where fit() runs in a worker
process; ``threads``, DNN2_WORKERS=0, fit() in a thread of the web process) runs at the same time
and the trials alternate between them.

Then the page rerun latency: a learner's tab reruns the MNIST page (the "r" shortcut) again and
again, with nothing training and while another tab trains; p50/p95 of each, alternating
(goal: p95 while training within 1.5x of idle).

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_waiting.py [--trials 3] [--idle 30]
       [--roots ../previous-worktree]  (the same checks on another checkout, trials alternating)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from contextlib import ExitStack  # noqa: E402

from harness import (_IDLE_JS, _PAINTED_JS, Server, browser_pids, cpu_seconds, launch_browser, renice_browsers,  # noqa: E402
                     wait_for_rerun, worker_pids)

FINISHED = re.compile(r"Finished in")
LINK = "/mnist?n=5000&epochs=3&models=CNN&seed={seed}"
CONFIGS = {"workers": {}, "threads": {"DNN2_WORKERS": "0"},
           # the worker's priority below the web process (DNN2_WORKER_NICE; the default is "workers")
           **{f"nice{n}": {"DNN2_WORKER_NICE": str(n)} for n in (0, 5, 10, 15, 19)}}


def settle_browsers(quiet_cpu: float = 0.05, window: float = 0.5, limit: float = 30.0) -> float:
    """Wait until Chromium is quiet (under ``quiet_cpu`` CPU seconds in ``window``): a tab keeps
    drawing its charts for a second or two after Streamlit's run has finished (measured: about 2.6 s
    of CPU after an MNIST page reports idle). Learners' pages were open before anyone pressed Start,
    so that drawing must not land in the timed run. Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = {p: cpu_seconds(p) for p in browser_pids()}
        time.sleep(window)
        used = sum(cpu_seconds(p) - c for p, c in before.items())
        if used < quiet_cpu:
            break
    return time.perf_counter() - t0


def open_page(browser, url: str, settle: bool = True):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_function(_IDLE_JS, timeout=300_000, polling=250)
    if settle:
        page.wait_for_function(_PAINTED_JS, timeout=60_000, polling=250)
        settle_browsers()
    return ctx, page


def _cpu(pids: list[int]) -> dict[int, float]:
    return {p: cpu_seconds(p) for p in pids}


PHASES = ("start", "prep", "fit", "eval", "seen")


def phases(srv: Server, seed: int, clicked: float, seen: float) -> dict[str, float]:
    """Where A's time went, from the run store's clocks (time.time() on one machine): Start -> the
    job's process began it (start), -> its fit began (prep: data, model), the epochs (fit), -> the run
    was stored (eval: test-set evaluation, saving), -> the page showed "Finished" (seen)."""
    for started, finished, progress, settings in srv.store_rows(
            "SELECT started_at, finished_at, progress, settings FROM runs"):
        if json.loads(settings).get("seed") != seed or started is None or finished is None:
            continue
        mp = next(iter(json.loads(progress)["models"].values()))
        fit_from, fit = mp.get("fit_started_at") or started, sum(mp.get("epoch_seconds") or [])
        return {"start": started - clicked, "prep": fit_from - started, "fit": fit,
                "eval": finished - fit_from - fit, "seen": seen - finished}
    return {}


def timed_run(browser, srv: Server, seed: int, others: list) -> tuple[float, dict[str, float], dict[str, float]]:
    """(seconds from A's Start to its "Finished", CPU seconds each side used meanwhile: the web
    process, the training worker(s), the Chromium processes; and the phases of A's run)."""
    ctx, page = open_page(browser, srv.url + LINK.format(seed=seed))
    groups = {"web": lambda: [srv.proc.pid], "worker": lambda: worker_pids(srv.proc.pid), "browser": browser_pids}
    before = {name: _cpu(pids()) for name, pids in groups.items()}
    page.get_by_role("button", name="Start training").click()
    t0, clicked = time.perf_counter(), time.time()
    for p in others:  # the queued learners press Start just after A
        p.get_by_role("button", name="Start training").click()
    page.get_by_text(FINISHED).first.wait_for(timeout=900_000)
    seconds, seen = time.perf_counter() - t0, time.time()
    cpu = {}
    for name, pids in groups.items():  # a process that started meanwhile counts from zero
        now = _cpu(pids())
        cpu[name] = sum(v - before[name].get(p, 0.0) for p, v in now.items())
    ctx.close()
    return seconds, cpu, phases(srv, seed, clicked, seen)


def rerun_latency(browser, srv: Server, trainer_link: str, probes: int) -> dict[str, list[float]]:
    """Rerun latency of a learner's MNIST page, idle and while another tab trains, alternating."""
    ctx, probe = open_page(browser, srv.url + "/mnist")
    out: dict[str, list[float]] = {"idle": [], "training": []}
    for block in range(2):
        for condition in ("idle", "training"):
            trainer = None
            if condition == "training":
                trainer = open_page(browser, srv.url + trainer_link.format(seed=90_000 + block))
                trainer[1].get_by_role("button", name="Start training").click()
                trainer[1].get_by_text(re.compile(r"epoch \d+/")).first.wait_for(timeout=300_000)
            for _ in range(probes):  # "r" reruns the page (Streamlit's shortcut; the body has the focus)
                out[condition].append(wait_for_rerun(probe, lambda: probe.keyboard.press("r")))
            if trainer is not None:
                stop = trainer[1].get_by_role("button", name="Stop")
                if stop.count():
                    stop.first.click()
                trainer[0].close()
                time.sleep(3)
    ctx.close()
    return out


def wait_for_no_live_runs(srv: Server, limit: float = 300.0) -> float:
    """Wait until the server's run store has nothing queued or running. A queued learner's Stop,
    clicked just as their tab closes, may never reach the server (the run then trains on until its
    idle budget, as a closed tab's run does): the next timed run must not queue behind it."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        [(live,)] = srv.store_rows("SELECT count(*) FROM runs WHERE state IN ('queued', 'running')")
        if not live:
            break
        time.sleep(0.5)
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--queued", type=int, default=3)
    ap.add_argument("--probes", type=int, default=10, help="reruns per latency block")
    ap.add_argument("--configs", default="workers,threads")
    ap.add_argument("--roots", default="", help="other checkouts to compare with this one, comma-separated: each "
                    "config runs on a server per checkout, trials alternating (e.g. the previous commit's worktree)")
    ap.add_argument("--latency-only", action="store_true")
    ap.add_argument("--conditions", default="alone,queued,idle", help="which of alone, queued, idle to time")
    ap.add_argument("--no-latency", action="store_true", help="skip the page rerun latency blocks")
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="run Chromium at this nice value (0: the issue's check, tabs share the cores equally; "
                         "10 approximates learners' browsers on their own machines)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    roots = [ROOT] + [Path(r).resolve() for r in args.roots.split(",") if r.strip()]
    plain = [c.strip() for c in args.configs.split(",") if c.strip()]
    # a server per (checkout, config), named by its config alone when only this checkout runs
    runs_on = {(f"{root.name}:{c}" if len(roots) > 1 else c): (root, c) for c in plain for root in roots}
    configs = list(runs_on)
    times = {c: {"alone": [], "queued": [], "idle": []} for c in configs}
    cpu_use = {c: {"alone": [], "queued": [], "idle": []} for c in configs}
    phase_use = {c: {"alone": [], "queued": [], "idle": []} for c in configs}
    latency = {}
    seed = 1000
    with sync_playwright() as pw, ExitStack() as stack:
        servers = {c: stack.enter_context(Server(root=runs_on[c][0], health_timeout=120,
                                                 env={"DNN2_IDLE_SECONDS": "900", **CONFIGS[runs_on[c][1]]},
                                                 log_path=ROOT / "artifacts" / f"server-{i}-{runs_on[c][1]}.log"))
                   for i, c in enumerate(configs)}
        browser = launch_browser(pw)
        if args.browser_nice:
            print(f"Chromium at nice {args.browser_nice}: {renice_browsers(args.browser_nice)} processes", flush=True)
        for srv in servers.values():
            warm_ctx, _ = open_page(browser, srv.url + "/mnist")
            warm_ctx.close()
        for trial in range(0 if args.latency_only else args.trials):
            for config, srv in servers.items():
                for condition in [c for c in ("alone", "queued", "idle") if c in args.conditions.split(",")]:
                    seed += 1
                    extra = []
                    if condition == "queued":
                        extra = [open_page(browser, srv.url + LINK.format(seed=50_000 + seed * 10 + i))
                                 for i in range(args.queued)]
                    elif condition == "idle":
                        extra = [open_page(browser, srv.url + "/mnist", settle=False) for _ in range(args.idle)]
                        settle_browsers(limit=180)  # once, after the last of the 30 tabs (a backlog of drawing)
                    pages = [p for _, p in extra] if condition == "queued" else []
                    if args.browser_nice:
                        renice_browsers(args.browser_nice)  # renderers started for the new tabs
                    seconds, cpu, phase = timed_run(browser, srv, seed, pages)
                    times[config][condition].append(seconds)
                    cpu_use[config][condition].append(cpu)
                    if phase:
                        phase_use[config][condition].append(phase)
                    print(f"trial {trial + 1} {config:7s} {condition:6s} {seconds:6.1f} s, CPU s: "
                          + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()) + "; phases s: "
                          + ", ".join(f"{k} {v:.2f}" for k, v in phase.items()), flush=True)
                    for p in pages:  # the queued runs are not measured: stop them
                        stop = p.get_by_role("button", name="Stop")
                        if stop.count():
                            stop.first.click()
                    time.sleep(1)  # let the Stop clicks reach the server before the tabs close
                    for ctx, _ in extra:
                        ctx.close()
                    waited = wait_for_no_live_runs(srv)
                    if waited > 2:
                        print(f"  (waited {waited:.0f} s for runs that were not stopped)", flush=True)
                    time.sleep(3)
        for config, srv in ({} if args.no_latency else servers).items():
            latency[config] = rerun_latency(browser, srv, "/mnist?n=5000&epochs=20&models=CNN&seed={seed}",
                                            args.probes)
            print(config, {k: [round(v, 2) for v in vs] for k, vs in latency[config].items()}, flush=True)
        browser.close()
    print(f"Chromium at nice {args.browser_nice}\n| server | condition | median (s) | trials (s) | ratio to alone | "
          "CPU during the run, median (s): web process / worker / Chromium |\n|---|---|---:|---|---:|---:|")
    for config in configs if not args.latency_only else []:
        alone = statistics.median(times[config]["alone"])
        for condition, values in times[config].items():
            if not values:
                continue
            med = statistics.median(values)
            used = " / ".join(f"{statistics.median(c[k] for c in cpu_use[config][condition]):.1f}"
                              for k in ("web", "worker", "browser"))
            print(f"| {config} | {condition} | {med:.1f} | {', '.join(f'{v:.1f}' for v in values)} | "
                  f"{med / alone:.2f}x | {used} |")
    print("\nWhere A's time went, median (s): Start -> its process began it -> fit began -> epochs -> stored -> "
          "the page showed it\n| server | condition | " + " | ".join(PHASES) + " |\n|---|---|" + "---:|" * len(PHASES))
    for config in configs if not args.latency_only else []:
        for condition, rows in phase_use[config].items():
            if rows:
                print(f"| {config} | {condition} | "
                      + " | ".join(f"{statistics.median(r[k] for r in rows):.2f}" for k in PHASES) + " |")
    print("\n| server | page rerun, nothing training p50 / p95 (s) | while a job trains p50 / p95 (s) | "
          "p95 ratio (goal <= 1.5) |\n|---|---|---|---:|")
    for config, lat in latency.items():
        idle, busy = lat["idle"], lat["training"]
        print(f"| {config} | {pct(idle, .5):.2f} / {pct(idle, .95):.2f} | {pct(busy, .5):.2f} / {pct(busy, .95):.2f} | "
              f"{pct(busy, .95) / pct(idle, .95):.2f}x |")


if __name__ == "__main__":
    main()
