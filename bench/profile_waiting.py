"""Where the server's time goes while one tab trains and others wait: py-spy on a real
`streamlit run` server and its training worker, 3 tabs queued behind the trainer.

Prints, per process (the web process, the worker), the share of samples that are busy and the
functions that hold most of them (py-spy's idle frames excluded). Needs `pip install py-spy`
(a profiling tool, not a dependency) and the right to ptrace (root, or kernel.yama.ptrace_scope=0).

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/profile_waiting.py [--seconds 20] [--queued 3]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_waiting import open_page  # noqa: E402
from harness import Server, launch_browser  # noqa: E402

LINK = "/mnist?n=5000&epochs=20&models=CNN&seed={seed}"


def summarise(raw: Path, top: int, name: str, possible: int) -> None:
    """Busy samples (py-spy leaves idle threads out) per leaf frame, for one process."""
    counter: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        counter[stack.split(";")[-1]] += int(count)
    total = sum(counter.values())
    print(f"\n## {name}: {total} busy samples in {possible} sampling instants ({total / possible:.0%} of one core's time)")
    print("| function (leaf frame) | share of this process's busy samples |\n|---|---:|")
    for leaf, n in counter.most_common(top):
        print(f"| `{leaf[:110]}` | {n / total:.1%} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--queued", type=int, default=3)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, Server(health_timeout=120, env={"DNN2_IDLE_SECONDS": "900"}) as srv:
        browser = launch_browser(pw)
        ctx, trainer = open_page(browser, srv.url + LINK.format(seed=1))
        waiting = [open_page(browser, srv.url + LINK.format(seed=100 + i)) for i in range(args.queued)]
        trainer.get_by_role("button", name="Start training").click()
        trainer.get_by_text("epoch 1/").first.wait_for(timeout=300_000)
        for _, p in waiting:
            p.get_by_role("button", name="Start training").click()
        from harness import worker_pids

        # one process at a time: the web process, then the worker that trains
        for name, pid in (("web (streamlit)", srv.proc.pid), *(("worker", p) for p in worker_pids(srv.proc.pid))):
            with tempfile.TemporaryDirectory() as d:
                raw = Path(d) / "profile.txt"
                subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(args.seconds), "--rate", "100",
                                "--format", "raw", "--nonblocking", "--output", str(raw)], check=True,
                               capture_output=True)
                summarise(raw, args.top, name, args.seconds * 100)
        browser.close()


if __name__ == "__main__":
    main()
