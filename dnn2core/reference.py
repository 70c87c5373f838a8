"""The course's full-length runs, trained into the run store: ``make reference``.

Why: in class there is no time to train MNIST on 60,000 digits or the traffic networks for 500
epochs, yet those are the figures the course reports. This command trains them once, through the
same experiment functions and keys as the pages (so a link with the course's settings shows the
run at once), and ``--export`` writes them to ``assets/reference/`` with their provenance, where
every server's store loads them read-only.

    python -m dnn2core.reference --list
    python -m dnn2core.reference [--only mnist,sequences,housing,cats_dogs] [--export assets/reference]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dnn2core import experiments
from dnn2core.runs import RunSpec, RunStore, default_runs_dir

__all__ = ["Reference", "references", "main"]

MAX_MODEL_BYTES = 2 * 1024**2  # a shipped model file
MAX_TOTAL_BYTES = 10 * 1024**2  # all shipped model files


@dataclass
class Reference:
    """One course run: its experiment, settings, and how to build its data and runs."""

    name: str
    spec: Callable[[], RunSpec]
    make_runs: Callable[[], list]
    budget: Any
    seed: int
    label: str
    data_words: Callable[[], str]


def _mnist_refs() -> list[Reference]:
    from dnn2core import data

    state: dict[str, Any] = {}

    def loaded():
        if "mnist" not in state:
            state["mnist"] = data.load_mnist()
        return state["mnist"]

    settings = experiments.mnist_settings(models=["Dense", "CNN"], api="sequential", epochs=5, batch=32,
                                          opt="rmsprop", lr=1e-3, n=60_000, val=0.1, seed=0)

    def spec() -> RunSpec:
        d = loaded().data
        full = dict(settings, n=len(d.y_train))
        return RunSpec("mnist", full, data=experiments.mnist_fingerprint(d), version=experiments.MNIST_VERSION)

    return [Reference("mnist: dense and CNN, 60,000 digits, 5 epochs", spec,
                      lambda: experiments.mnist_runs(loaded().data, spec().settings),
                      experiments.mnist_budget(), 0, "Dense + CNN · 5 ep · batch 32 · rmsprop 0.001 · all digits · "
                      "seed 0 (the course's run)", lambda: loaded().provenance.detail)]


def _sequences_refs() -> list[Reference]:
    from dnn2core import forecasting as fc

    state: dict[str, Any] = {}

    def series(settings):
        if "table" not in state:
            state["table"] = fc.load_traffic()
        return experiments.sequences_series(state["table"].data, settings)

    out = []
    for layout in ("course", "sequence"):
        settings = experiments.sequences_settings(gap=6, policy="longest", agg="mean", hours=0, h=fc.HISTORY_HOURS,
                                                  layout=layout, extras=[], models=list(fc.MODEL_KINDS),
                                                  epochs=fc.COURSE_EPOCHS, seed=0)

        def spec(settings=settings) -> RunSpec:
            return RunSpec("sequences", settings, data=experiments.sequences_fingerprint(series(settings)),
                           version=experiments.SEQUENCES_VERSION)

        out.append(Reference(f"sequences: dense, SimpleRNN, LSTM, 500 epochs, {layout} shape", spec,
                             lambda settings=settings: experiments.sequences_runs(
                                 experiments.sequences_prepare(series(settings), settings), settings),
                             experiments.sequences_budget(), 0,
                             f"Dense + SimpleRNN + LSTM · 500 ep · {layout} · h=6 · seed 0 (the course's run)",
                             lambda: state["table"].provenance.detail if "table" in state else ""))
    return out


def _housing_refs() -> list[Reference]:
    from dnn2core import regression as reg

    state: dict[str, Any] = {}

    def df():
        if "ames" not in state:
            state["ames"] = reg.load_ames()
        return state["ames"].data

    out = []
    for epochs, std, log, words in ((500, False, False, "the course's pipeline"),
                                    (500, True, True, "standardised features, log price"),
                                    (5000, False, False, "the course's pipeline")):  # Video 7's long run
        settings = experiments.housing_settings(epochs=epochs, batch=32, seed=0, noid=False, std=std, log=log,
                                                stop=False, patience=50)

        def spec(settings=settings) -> RunSpec:
            return RunSpec("housing", settings, data=experiments.housing_fingerprint(df()),
                           version=experiments.HOUSING_VERSION)

        def make_runs(settings=settings):
            _, _, prep = experiments.housing_prepare(df(), settings)
            return experiments.housing_runs(prep, settings)

        out.append(Reference(f"housing: {epochs:,} epochs, {words}", spec, make_runs, experiments.housing_budget(), 0,
                             f"{epochs:,} ep · batch 32 · seed 0 · {words} (the course's run)",
                             lambda: state["ames"].provenance.detail if "ames" in state else ""))
    return out


def references(only: set[str] | None = None) -> list[Reference]:
    groups = {"mnist": _mnist_refs, "sequences": _sequences_refs, "housing": _housing_refs}
    out = []
    for name, make in groups.items():
        if only is None or name in only:
            out.extend(make())
    return out


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("tensorflow", "keras", "numpy", "pandas"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - provenance is best effort
            pass
    return out


def _bar(fraction: float, width: int = 30) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def train(ref: Reference, store: RunStore, *, force: bool = False, out=sys.stdout) -> Any:
    """Train one reference into the store with a progress bar; returns its record."""
    from dnn2core.jobs import JobRegistry
    from dnn2core.training import Budget, JobGate, format_eta

    spec = ref.spec()
    existing = store.get(spec.key)
    if existing is not None and existing.state == "done" and not force:
        print(f"  already in the store: {ref.name}", file=out)
        return existing
    budget = Budget(max_epochs=max(ref.budget.max_epochs, 5000), max_samples=10**12, max_seconds=10**7,
                    idle_seconds=10**7)  # a reference run has no learner to abandon it
    registry = JobRegistry(store, JobGate(1))
    view, _ = registry.start(spec, ref.make_runs, budget=budget, seed=ref.seed, label=ref.label,
                             session="reference", replace=force)
    while True:
        record = store.get(spec.key)
        if record is not None and record.finished:
            break
        snap = view.job.snapshot() if view.job is not None else None
        if snap is not None:
            out.write(f"\r  {_bar(snap.fraction)} {snap.fraction:6.1%} {snap.current or '':10s} "
                      f"ETA {format_eta(snap.eta_seconds):>12s}")
            out.flush()
        time.sleep(1.0)
    out.write("\n")
    return record


def export(store: RunStore, keys: list[str], dest: Path, *, data_words: dict[str, str], out=sys.stdout) -> None:
    """Copy finished runs into ``dest`` with their provenance, checking the model size limits."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for key in keys:
        rec = store.get(key)
        if rec is None or rec.state != "done":
            print(f"  skipped {key}: not finished", file=out)
            continue
        src = Path(rec.path)
        sizes = {p.name: p.stat().st_size for p in src.glob("*.keras")}
        too_big = [n for n, b in sizes.items() if b > MAX_MODEL_BYTES]
        total += sum(sizes.values())
        if too_big or total > MAX_TOTAL_BYTES:
            raise SystemExit(f"Model files over the shipping limits (2 MB each, 10 MB in all): {too_big or total}")
        target = dest / key
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src, target)
        meta = json.loads((target / "run.json").read_text())
        meta["provenance"] = {"device": rec.device, "date": time.strftime("%Y-%m-%d", time.localtime(rec.finished_at)),
                              "data": data_words.get(key, ""), "versions": _versions(),
                              "host": platform.machine()}
        (target / "run.json").write_text(json.dumps(meta, indent=1))
        print(f"  exported {rec.experiment} {key} ({sum(sizes.values()) / 1024:.0f} KB of models)", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dnn2core.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated: mnist, sequences, housing, cats_dogs")
    parser.add_argument("--list", action="store_true", help="list the reference runs and exit")
    parser.add_argument("--force", action="store_true", help="train again even if the store has the run")
    parser.add_argument("--store", default=str(default_runs_dir()), help="the run store (DNN2_RUNS_DIR)")
    parser.add_argument("--export", default="", help="copy the finished runs here (e.g. assets/reference)")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    refs = references(only)
    if args.list:
        for ref in refs:
            print(ref.name)
        print("cats_dogs: VGG16 frozen and fine-tuned (needs ImageNet weights; see below)")
        return 0
    store = RunStore(args.store)
    done, words = [], {}
    for i, ref in enumerate(refs, 1):
        print(f"[{i}/{len(refs)}] {ref.name}")
        record = train(ref, store, force=args.force)
        if record is not None and record.state == "done":
            done.append(record.key)
            words[record.key] = ref.data_words()
        else:
            print(f"  ended {record.state if record else 'missing'}: {record.message if record else ''}")
    if only is None or "cats_dogs" in only:
        print(f"cats_dogs: {pretrained_note()}")
    if args.export:
        export(store, done, Path(args.export), data_words=words)
    return 0


def pretrained_note() -> str:
    return ("skipped: training the frozen and fine-tuned VGG16 needs its ImageNet weights "
            "(~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 or DNN2_VGG16_WEIGHTS) and, "
            "for the full run, a GPU; run `make reference` on such a machine.")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
