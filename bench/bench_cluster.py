"""The Ray backend on this machine, against the local worker processes.

1. Job start latency: Start -> the job is training (its ``started_at``), for warm local workers and
   warm Ray workers, alternating.
2. Learners served per minute: a burst of small jobs (distinct seeds, nothing shared) through Ray
   with 1 training slot (DNN2_CPU_PER_JOB=2 on a 2-CPU cluster) and with 2 (DNN2_CPU_PER_JOB=1),
   and through 1 local worker.
3. Memory of the Ray head (GCS, raylet and helpers, not the task workers).

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_cluster.py [--burst 10] [--trials 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DNN2_RAY_CPUS"] = "2"

from harness import rss_mb  # noqa: E402

from dnn2core import cluster, data, experiments  # noqa: E402
from dnn2core.jobs import JobRegistry  # noqa: E402
from dnn2core.runs import RunSpec, RunStore  # noqa: E402
from dnn2core.training import JobGate  # noqa: E402
from dnn2core.workers import WorkerPool  # noqa: E402

_seed = iter(range(1000, 10**6))


def start(reg: JobRegistry, mnist, epochs: int = 1, n: int = 500):
    seed = next(_seed)
    settings = experiments.mnist_settings(models=["Dense"], api="sequential", epochs=epochs, batch=32, opt="adam",
                                          lr=0.001, n=n, val=0.1, seed=seed)
    spec = RunSpec("mnist", settings, data="bench", version=experiments.MNIST_VERSION)
    t0 = time.time()
    view, _ = reg.start(spec, lambda: experiments.mnist_runs(mnist, settings), budget=experiments.mnist_budget(),
                        seed=seed, label="bench", session=f"s{seed}")
    return spec.key, view, t0


def latency(reg: JobRegistry, mnist) -> float:
    key, view, t0 = start(reg, mnist)
    record = reg.wait(key, 300)
    assert record.state == "done", record.message
    started = reg.view(key).snapshot().started_at
    return started - t0


def served_per_minute(reg: JobRegistry, mnist, n: int) -> float:
    t0 = time.time()
    keys = [start(reg, mnist)[0] for _ in range(n)]
    for key in keys:
        assert reg.wait(key, 900).state == "done"
    return n / (time.time() - t0) * 60


def ray_head_mb() -> float:
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if (b"gcs_server" in cmd or b"raylet" in cmd or b"ray/_private" in cmd or b"ray/autoscaler" in cmd
                or b"dashboard" in cmd and b"ray" in cmd) and not cmd.startswith(b"ray::"):
            total += rss_mb(int(proc.name))
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    mnist = data.load_mnist().data
    pool = WorkerPool(1)
    os.environ["DNN2_RAY_ADDRESS"] = "local"
    os.environ["DNN2_CPU_PER_JOB"] = "2"
    t0 = time.perf_counter()
    cluster.connect()
    ray_init = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        local = JobRegistry(RunStore(Path(d) / "local"), JobGate(1), pool=pool)
        on_ray = JobRegistry(RunStore(Path(d) / "ray"), JobGate(1))
        # warm both: the first job of a worker imports TensorFlow
        os.environ.pop("DNN2_RAY_ADDRESS")
        latency(local, mnist)
        os.environ["DNN2_RAY_ADDRESS"] = "local"
        latency(on_ray, mnist)
        lat = {"local worker": [], "Ray": []}
        for _ in range(args.trials):
            os.environ.pop("DNN2_RAY_ADDRESS")
            lat["local worker"].append(latency(local, mnist))
            os.environ["DNN2_RAY_ADDRESS"] = "local"
            lat["Ray"].append(latency(on_ray, mnist))
        print(lat, flush=True)
        served = {}
        os.environ.pop("DNN2_RAY_ADDRESS")
        served["1 local worker"] = served_per_minute(local, mnist, args.burst)
        os.environ["DNN2_RAY_ADDRESS"] = "local"
        os.environ["DNN2_CPU_PER_JOB"] = "2"
        served["Ray, 1 worker (2 CPUs per job)"] = served_per_minute(on_ray, mnist, args.burst)
        os.environ["DNN2_CPU_PER_JOB"] = "1"
        served["Ray, 2 workers (1 CPU per job)"] = served_per_minute(on_ray, mnist, args.burst)
        print(served, flush=True)
        head = ray_head_mb()
    pool.close()
    print(f"ray.init of a local 2-CPU cluster: {ray_init:.1f} s\n")
    print("| figure | value |\n|---|---|")
    for name, values in lat.items():
        print(f"| job start latency, {name}: median of {len(values)} (s) | {statistics.median(values):.2f} |")
    for name, per_min in served.items():
        print(f"| learners served per minute, {args.burst} small MNIST runs, {name} | {per_min:.1f} |")
    print(f"| memory of the Ray head (GCS + raylet + helpers, MB) | {head:.0f} |")


if __name__ == "__main__":
    main()
