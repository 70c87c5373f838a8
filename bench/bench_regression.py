"""House-price figures for README: dev MAE (dollars) and seconds to train of the course's network
(its pipeline as printed, then with standardised features, optionally with a log-price target)
and of the five scikit-learn baselines, all on the same course split of Kaggle's train.csv.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_regression.py [--epochs 500] [--seeds 0]
       [--log] [--cv 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dnn2core import regression as reg  # noqa: E402
from dnn2core.device import configure_tensorflow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=500, help="the course trains 500 epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="split and weight seeds")
    ap.add_argument("--log", action="store_true", help="also the network with standardised features + log price")
    ap.add_argument("--cv", type=int, default=0, help="k-fold CV MAE of the baselines on the training rows")
    args = ap.parse_args()

    info = configure_tensorflow()
    loaded = reg.load_ames()
    p = loaded.provenance
    print(f"Data: {p.badge} ({p.detail}); device {info.label}")
    variants = [("Network, course pipeline", False, False), ("Network, standardised features", True, False)]
    if args.log:
        variants.append(("Network, standardised + log price", True, True))

    rows = []
    for seed in args.seeds:
        train, dev = reg.course_split(loaded.data, seed)
        print(f"\nseed {seed}: {len(train):,} train / {len(dev):,} dev rows, {train.shape[1] - 1} features")
        for name, standardise, log_target in variants:
            prep = reg.prepare(train, dev, standardise=standardise, log_target=log_target)
            _, out = reg.train_network(prep, args.epochs, batch_size=32, seed=seed)
            rows.append((seed, f"{name} ({out['epochs']} epochs)", out["dev_mae"], out["dev_rmse"], out["seconds"]))
            print(f"  {rows[-1][1]}: MAE ${out['dev_mae']:,.0f} in {out['seconds']:.1f} s", flush=True)
        table = reg.run_baselines(reg.prepare(train, dev), seed=seed, cv_folds=args.cv)
        for _, r in table.iterrows():
            extra = f" (CV MAE ${r[f'{args.cv}-fold CV MAE ($)']:,.0f})" if args.cv > 1 else ""
            rows.append((seed, r["method"] + extra, r["dev MAE ($)"], r["dev RMSE ($)"], r["fit seconds"]))

    print("\n| seed | method | dev MAE ($) | dev RMSE ($) | seconds to train |")
    print("|---:|---|---:|---:|---:|")
    for seed, name, mae, rmse, secs in rows:
        print(f"| {seed} | {name} | {mae:,.0f} | {rmse:,.0f} | {secs:.2f} |")


if __name__ == "__main__":
    main()
