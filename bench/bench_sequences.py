"""Benchmark: the course's three forecasters against classical baselines on the real traffic series.

    .venv/bin/python bench/bench_sequences.py [--epochs 30] [--layout course sequence] [--data-dir DIR]

Uses the UCI Metro Interstate Traffic Volume file (DNN2_DATA_DIR, default ../shared/data), cleaned as the
page does by default (interpolate gaps up to 6 h, keep the longest clean stretch), h=6, f=24, the course's
80% split. The course trained 500 epochs; that takes about half an hour per layout on a CPU, so the default
here is fewer (--epochs 500 for the course setting). Prints markdown tables: validation MSE/MAE on the
[0, 1] scale for every method on the same windows, and seconds per epoch per network.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--layout", nargs="+", default=["course"], choices=["course", "sequence"])
    parser.add_argument("--extras", nargs="*", default=[], choices=["hour of day", "day of week"])
    parser.add_argument("--arima", default="SARIMA(1,0,1)(0,1,1)24")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("DNN2_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()
    os.environ["DNN2_DATA_DIR"] = args.data_dir
    os.environ.setdefault("DNN2_OFFLINE", "1")

    import keras
    import numpy as np

    from dnn2core import forecasting as fc
    from dnn2core.device import configure_tensorflow

    device = configure_tensorflow().label
    loaded = fc.load_traffic()
    cleaned = fc.series_from_table(loaded.data)
    print(f"Data: {loaded.provenance.badge} ({loaded.provenance.location})")
    print("Cleaning: " + " ".join(cleaned.report.lines()))
    print(f"Device: {device}; {args.epochs} epochs (the course: {fc.COURSE_EPOCHS}), batch {fc.BATCH_SIZE}, "
          f"seed {args.seed}\n")

    for layout in args.layout:
        prep = fc.prepare(cleaned.series, layout=layout, extras=args.extras)
        rows, speed = [], []
        for kind in fc.MODEL_KINDS:
            keras.utils.set_random_seed(args.seed)
            model = fc.build_forecaster(kind, prep.input_shape)
            times: list[float] = []

            class Timer(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    self.t0 = time.perf_counter()

                def on_epoch_end(self, epoch, logs=None):
                    times.append(time.perf_counter() - self.t0)

            hist = model.fit(prep.X_train, prep.Y_train, epochs=args.epochs, batch_size=fc.BATCH_SIZE,
                             validation_data=(prep.X_val, prep.Y_val), verbose=0, callbacks=[Timer()])
            s = fc.scores(fc.predict(model, prep.X_val), prep.Y_val)
            best = int(np.argmin(hist.history["val_loss"]))
            rows.append((kind, "network", s["mse"], s["mae"],
                         f"best epoch {best + 1}: {hist.history['val_loss'][best]:.4f}"))
            speed.append((kind, model.count_params(), float(np.median(times[1:] if len(times) > 1 else times)),
                          sum(times)))
        for name, fcst in fc.baseline_forecasts(prep).items():
            s = fc.scores(fcst, prep.Y_val)
            rows.append((name, "classical", s["mse"], s["mae"], ""))
        order, seasonal = fc.ARIMA_CHOICES[args.arima]
        t0 = time.perf_counter()
        ar = fc.arima_forecasts(prep.scaled, prep.fit_end, prep.origins_val, prep.f, order, seasonal)
        s = fc.scores(ar.forecasts, prep.Y_val)
        rows.append((ar.label, "classical", s["mse"], s["mae"],
                     f"fit on last {ar.fit_hours} training hours in {ar.fit_seconds:.1f} s, all "
                     f"{len(prep.origins_val)} origins filtered in {ar.filter_seconds:.1f} s "
                     f"(total {time.perf_counter() - t0:.1f} s)" + ("" if ar.converged else ", not converged")))

        span = prep.scaler.hi - prep.scaler.lo
        print(f"### Layout {layout} (input {prep.input_shape}), extras {args.extras or 'none'}: "
              f"{len(prep.X_train):,} train / {len(prep.X_val):,} validation windows\n")
        print("| method | kind | val MSE | val MAE | MAE (vehicles/h) | note |")
        print("|---|---|---:|---:|---:|---|")
        for name, kind, mse, mae, note in rows:
            print(f"| {name} | {kind} | {mse:.4f} | {mae:.4f} | {mae * span:.0f} | {note} |")
        print("\n| network | params | s/epoch (median) | total s |")
        print("|---|---:|---:|---:|")
        for kind, params, per_epoch, total in speed:
            print(f"| {kind} | {params:,} | {per_epoch:.2f} | {total:.0f} |")
        print(f"\nCourse (500 epochs, its own freeway sensor): "
              + ", ".join(f"{k} {v:.2e}" for k, v in fc.COURSE_VAL_LOSS.items()) + "\n")


if __name__ == "__main__":
    main()
