"""Forecasting hourly traffic: the course's windows and three networks, against classical baselines.

Video 6 of the course forecasts the next 24 hours of freeway flow from the last 6 hours with a
dense network, a SimpleRNN and an LSTM (16 units each). Learning outcome 6 asks how that compares
with classical time-series analysis, so everything here is scored on the *same* validation windows
with the *same* metric: persistence, seasonal naive (same hour yesterday) and a SARIMA model.

Why each step exists:

* real hourly series have repeated and missing timestamps: ``clean_hourly`` reports and handles
  them (dedupe, resample hourly, interpolate short gaps, refuse long ones or keep the longest clean
  stretch) instead of silently shifting every window by the missing hours;
* the [0, 1] scaling is fitted on the training part only, otherwise the validation range leaks into
  training (``Scaler.fit``);
* ``build_window`` is the course's function, loop included, so the learner can match shapes;
* ``lstm_gates`` recomputes the trained LSTM with NumPy from its weights: the course's equations
  with numbers, checked against Keras.

TensorFlow, Keras and statsmodels are imported inside functions only.
"""

from __future__ import annotations

import ast
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from dnn2core.data import Loaded, Provenance, load_with_fallback, package_file

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import plotly.graph_objects as go

Layout = Literal["course", "sequence"]
GapPolicy = Literal["longest", "refuse"]

HISTORY_HOURS = 6     # the course: forecast from the last 6 hours ...
FORECAST_HOURS = 24   # ... the next 24
UNITS = 16            # every network has 16 units
BATCH_SIZE = 32
COURSE_EPOCHS = 500
TRAIN_FRACTION = 0.8
SEASON = 24           # hours in a day: the seasonal naive and SARIMA period
MIN_HOURS = 200       # fewer hours than this leave too few validation windows to score anything
MODEL_KINDS = ("Dense", "SimpleRNN", "LSTM")
EXTRA_INPUTS = ("hour of day", "day of week")
COURSE_VAL_LOSS = {"Dense": 2.17e-2, "SimpleRNN": 2.06e-2, "LSTM": 1.91e-2}  # after 500 epochs, in the text


# ============================================================================ loading

TRAFFIC_FILE = "Metro_Interstate_Traffic_Volume.csv.gz"
TRAFFIC_URL = ("https://archive.ics.uci.edu/ml/machine-learning-databases/00492/"
               "Metro_Interstate_Traffic_Volume.csv.gz")
TRAFFIC_NAME = "Metro Interstate traffic volume"

# Names seen in public exports, lower-case. UCI: date_time/traffic_volume; PeMS station exports:
# "Hour" or "5 Minutes" and "Flow (Veh/Hour)" / "Flow (Veh/5 Minutes)", clearinghouse: "Total Flow".
_TIME_NAMES = ("date_time", "timestamp", "datetime", "date time", "time", "hour", "5 minutes", "date",
               "start time", "time stamp")
_VALUE_NAMES = ("traffic_volume", "total flow", "flow (veh/hour)", "flow (veh/5 minutes)", "flow", "volume",
                "value", "count", "demand", "y")


@dataclass(frozen=True)
class SeriesTable:
    """A table as read, with the two columns that make the series (and what the values measure)."""
    frame: pd.DataFrame
    time_col: str
    value_col: str
    quantity: str = "value"   # "traffic volume", for axis titles
    unit: str = ""            # "vehicles/hour"


def traffic_how_to() -> str:
    return (f"Put the UCI file {TRAFFIC_FILE} in the server's data folder (DNN2_DATA_DIR, or its traffic/ folder), "
            f"run once with internet access so it downloads from {TRAFFIC_URL}, or upload your own hourly CSV.")


def _parse_traffic(path: Path) -> SeriesTable:
    frame = pd.read_csv(path)
    for col in ("date_time", "traffic_volume"):
        if col not in frame.columns:
            raise ValueError(f"{path} is not the UCI Metro Interstate Traffic Volume file: it has no {col!r} column.")
    return SeriesTable(frame, "date_time", "traffic_volume", "traffic volume", "vehicles/hour")


def taylor_values(path: Path) -> np.ndarray:
    """The 4,032 half-hourly demand values that pmdarima embeds as a literal in ``taylor.py``.

    Read with ``ast`` so that pmdarima (and its scikit-learn/Cython imports) is never imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "array"
                and node.args and isinstance(node.args[0], ast.List) and len(node.args[0].elts) > 1000):
            return np.asarray(ast.literal_eval(node.args[0]), dtype=np.float64)
    raise ValueError(f"No data array found in {path}.")


def _taylor_stand_in() -> Loaded[SeriesTable]:
    path = package_file("pmdarima", "datasets", "taylor.py")
    if path is None:
        raise FileNotFoundError("No traffic series is available: no local copy, no internet, and pmdarima (which "
                                "ships a stand-in series) is not installed. " + traffic_how_to())
    values = taylor_values(path)
    stamps = pd.date_range("2000-06-05 00:00", periods=len(values), freq="30min")
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M"), "demand_mw": values})
    detail = (f"half-hourly electricity demand in England and Wales, 5 June - 27 August 2000 "
              f"({len(values):,} readings, averaged to {len(values) // 2:,} hours, in megawatts; Taylor 2003), "
              "shipped with pmdarima. Like traffic it has a strong daily and weekly cycle, but it is NOT traffic")
    prov = Provenance(TRAFFIC_NAME, "embedded", False, detail, how_to_get_full=traffic_how_to(),
                      location=str(path), stand_in=True)
    return Loaded(SeriesTable(frame, "timestamp", "demand_mw", "electricity demand", "MW"), prov)


def load_traffic() -> Loaded[SeriesTable]:
    """UCI Metro Interstate Traffic Volume: DNN2_DATA_DIR (or its traffic/), Keras cache, UCI URL,
    else pmdarima's electricity demand series, labelled as a stand-in."""
    def detail(t: SeriesTable) -> str:
        stamps = pd.to_datetime(t.frame[t.time_col])
        return (f"{len(t.frame):,} rows, {stamps.min():%Y-%m-%d} to {stamps.max():%Y-%m-%d}, hourly vehicles on "
                "I-94 westbound (MN DoT ATR station 301), UCI, CC BY 4.0")

    return load_with_fallback(
        TRAFFIC_NAME, local_names=[TRAFFIC_FILE, TRAFFIC_FILE.removesuffix(".gz")], local_subdirs=("", "traffic"),
        parse=_parse_traffic, url=TRAFFIC_URL, cache_name=TRAFFIC_FILE, embedded=_taylor_stand_in,
        full_detail=detail, how_to_get_full=traffic_how_to())


def _looks_like_time(col: pd.Series) -> bool:
    sample = col.dropna().head(50)
    if sample.empty or pd.api.types.is_numeric_dtype(sample):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample.astype(str), errors="coerce")
    return bool(parsed.notna().mean() >= 0.9)


def detect_columns(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """Guess (timestamp column, value column) for UCI, PeMS and plain two-column exports."""
    lower = {str(c).strip().lower(): c for c in frame.columns}

    def by_name(names: Sequence[str], ok) -> str | None:
        for name in names:
            if name in lower and ok(frame[lower[name]]):
                return lower[name]
        for name in names:  # "Flow (Veh/Hour)" contains "flow"
            for low, col in lower.items():
                if len(name) > 2 and name in low and ok(frame[col]):
                    return col
        return None

    time_col = by_name(_TIME_NAMES, _looks_like_time)
    if time_col is None:
        time_col = next((c for c in frame.columns if _looks_like_time(frame[c])), None)

    def numeric(col: pd.Series) -> bool:  # a sample: a guess needs no 500,000-row parse per column
        return bool(pd.to_numeric(col.head(1000), errors="coerce").notna().mean() >= 0.5)

    value_col = by_name(_VALUE_NAMES, numeric)
    if value_col is None or value_col == time_col:
        value_col = next((c for c in frame.columns if c != time_col and numeric(frame[c])), None)
    return time_col, value_col


# ============================================================================ cleaning


@dataclass
class CleanReport:
    """What ``clean_hourly`` found and did, for the page to say in words."""
    rows_read: int = 0
    empty_timestamps: int = 0
    unsorted: bool = False
    duplicate_rows: int = 0          # rows whose timestamp already appeared
    conflicting_duplicates: int = 0  # duplicated timestamps whose values differ (averaged)
    readings_per_hour: float = 1.0   # > 1 for 5-minute or half-hourly data (aggregated)
    aggregation: str = "mean"
    empty_values: int = 0
    missing_hours: int = 0           # hours absent from the hourly grid, before filling
    short_gaps: int = 0              # runs of <= max_gap missing hours, interpolated
    hours_interpolated: int = 0
    max_gap: int = 6
    long_gaps: list[tuple[pd.Timestamp, pd.Timestamp, int]] = field(default_factory=list)
    policy: str = "longest"
    hours_dropped: int = 0           # outside the longest clean stretch
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    hours_used: int = 0

    def lines(self) -> list[str]:
        out = [f"Read {self.rows_read:,} rows."]
        if self.empty_timestamps:
            out.append(f"{self.empty_timestamps:,} rows had no timestamp and were dropped.")
        if self.unsorted:
            out.append("The rows were not in time order; they were sorted.")
        if self.duplicate_rows:
            out.append(f"{self.duplicate_rows:,} rows repeat a timestamp (the UCI file repeats an hour for each "
                       f"weather condition); kept one value per timestamp"
                       + (f", averaging the {self.conflicting_duplicates:,} timestamps whose values differ."
                          if self.conflicting_duplicates else " (their values were identical)."))
        if self.readings_per_hour > 1.01:
            out.append(f"About {self.readings_per_hour:.0f} readings per hour: aggregated to hours by their "
                       f"{self.aggregation}.")
        if self.empty_values:
            out.append(f"{self.empty_values:,} rows had an empty value (treated as missing).")
        if self.missing_hours:
            out.append(f"{self.missing_hours:,} hours are missing from the hourly grid.")
        if self.short_gaps:
            out.append(f"Within the hours used, {self.short_gaps:,} short gaps (at most {self.max_gap} h) were "
                       f"filled by linear "
                       f"interpolation ({self.hours_interpolated:,} hours).")
        if self.long_gaps:
            worst = sorted(self.long_gaps, key=lambda g: -g[2])[:3]
            desc = "; ".join(f"{h:,} h from {a:%Y-%m-%d %H:%M}" for a, b, h in worst)
            out.append(f"{len(self.long_gaps):,} gaps are longer than {self.max_gap} h (longest: {desc}). "
                       f"Inventing that much traffic would teach the networks fiction, so only the longest "
                       f"stretch without such a gap is used; {self.hours_dropped:,} hours outside it are dropped.")
        if self.start is not None:
            out.append(f"Using {self.hours_used:,} consecutive hours, {self.start:%Y-%m-%d %H:%M} to "
                       f"{self.end:%Y-%m-%d %H:%M}.")
        return out

    def table(self) -> pd.DataFrame:
        """The same report as a small table, one row per cleaning step that did something:
        step, how many, and what was done."""
        rows = [("rows read", f"{self.rows_read:,}", "the raw file")]
        if self.empty_timestamps:
            rows.append(("rows without a timestamp", f"{self.empty_timestamps:,}", "dropped"))
        if self.unsorted:
            rows.append(("rows out of time order", "yes", "sorted"))
        if self.duplicate_rows:
            rows.append(("rows repeating a timestamp", f"{self.duplicate_rows:,}",
                         "one value kept per timestamp"
                         + (f"; {self.conflicting_duplicates:,} differing ones averaged" if self.conflicting_duplicates
                            else " (identical values)")))
        if self.readings_per_hour > 1.01:
            rows.append(("readings per hour", f"about {self.readings_per_hour:.0f}", f"aggregated by their {self.aggregation}"))
        if self.empty_values:
            rows.append(("rows with an empty value", f"{self.empty_values:,}", "treated as missing"))
        if self.missing_hours:
            rows.append(("hours missing from the hourly grid", f"{self.missing_hours:,}", "see the two gap rows"))
        if self.short_gaps:
            rows.append((f"short gaps (at most {self.max_gap} h)", f"{self.short_gaps:,}",
                         f"filled by linear interpolation ({self.hours_interpolated:,} hours)"))
        if self.long_gaps:
            longest = max(self.long_gaps, key=lambda g: g[2])
            rows.append((f"long gaps (over {self.max_gap} h)", f"{len(self.long_gaps):,}",
                         f"never invented: only the longest stretch without one is kept, {self.hours_dropped:,} "
                         f"hours dropped (longest gap {longest[2]:,} h from {longest[0]:%Y-%m-%d})"))
        if self.start is not None:
            rows.append(("hours used", f"{self.hours_used:,}",
                         f"consecutive, {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"))
        return pd.DataFrame(rows, columns=["step", "how many", "what was done"])


@dataclass
class Cleaned:
    series: pd.Series    # hourly values on a complete hourly DatetimeIndex, no NaN
    report: CleanReport


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in mask."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _file_lines(positions: Iterable[int], limit: int = 5) -> list[int]:
    return [int(p) + 2 for p in list(positions)[:limit]]  # 1-based, plus the header line


def clean_hourly(frame: pd.DataFrame, time_col: str, value_col: str, *, max_gap: int = 6,
                 policy: GapPolicy = "longest", aggregation: Literal["mean", "sum"] = "mean") -> Cleaned:
    """Turn a timestamp/value table into a gap-free hourly series, reporting every repair.

    Windows assume consecutive hours: a missing hour silently shifts every later window, so gaps of
    at most ``max_gap`` hours are interpolated and longer ones are refused (``policy="refuse"``) or
    cut away by keeping the longest clean stretch (``policy="longest"``)."""
    for col in (time_col, value_col):
        if col not in frame.columns:
            raise ValueError(f"There is no column named {col!r}. Columns found: "
                             f"{', '.join(map(str, frame.columns[:20]))}.")
    if time_col == value_col:
        raise ValueError("Choose two different columns for the timestamp and the value.")
    if policy not in ("longest", "refuse"):
        raise ValueError("policy must be 'longest' or 'refuse'.")
    if aggregation not in ("mean", "sum"):
        raise ValueError("aggregation must be 'mean' or 'sum'.")
    if not 0 <= int(max_gap) <= 168:
        raise ValueError("The longest gap to interpolate must be between 0 and 168 hours.")
    report = CleanReport(rows_read=len(frame), max_gap=int(max_gap), policy=policy, aggregation=aggregation)

    raw_values = frame[value_col]
    values = pd.to_numeric(raw_values, errors="coerce")
    text = values.isna() & raw_values.notna() & (raw_values.astype(str).str.strip() != "")
    if text.any():
        pos = np.flatnonzero(text.to_numpy())
        sample = raw_values[text].astype(str).head(3).tolist()
        raise ValueError(f"The value column {value_col!r} must hold numbers, but {len(pos):,} rows hold text such "
                         f"as {sample} (file lines {_file_lines(pos)}). Pick the column with the measurements, "
                         f"or fix those rows.")
    if np.isinf(values.to_numpy(dtype=float)).any():
        raise ValueError(f"The value column {value_col!r} holds infinite values.")

    raw_times = frame[time_col]
    if pd.api.types.is_numeric_dtype(raw_times):
        raise ValueError(f"The column {time_col!r} holds numbers, not dates and times. Choose the timestamp column "
                         "(for example '2018-01-01 13:00').")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = pd.to_datetime(raw_times.astype("string"), errors="coerce")
        if stamps.isna().mean() > 0.5:  # mixed formats: let pandas try each row
            stamps = pd.to_datetime(raw_times.astype("string"), errors="coerce", format="mixed")
    empty = raw_times.isna() | (raw_times.astype(str).str.strip() == "")
    bad = stamps.isna() & ~empty
    if bad.any():
        pos = np.flatnonzero(bad.to_numpy())
        sample = raw_times[bad].astype(str).head(3).tolist()
        raise ValueError(f"{len(pos):,} entries of {time_col!r} are not dates and times, such as {sample} "
                         f"(file lines {_file_lines(pos)}).")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    report.empty_timestamps = int(empty.sum())
    table = pd.DataFrame({"t": stamps, "v": values}).loc[~empty.to_numpy()]
    report.empty_values = int(table["v"].isna().sum())
    table = table.dropna(subset=["v"])
    if table.empty:
        raise ValueError("No row has both a timestamp and a number.")
    report.unsorted = not table["t"].is_monotonic_increasing
    table = table.sort_values("t", kind="stable")

    dup = table["t"].duplicated(keep="first")
    report.duplicate_rows = int(dup.sum())
    if report.duplicate_rows:
        spread = table.groupby("t")["v"].agg(["min", "max"])
        report.conflicting_duplicates = int((spread["max"] > spread["min"]).sum())
    series = table.groupby("t")["v"].mean()

    if len(series) > 1:
        step = pd.Series(series.index).diff().median()
        if step > pd.Timedelta(hours=1, minutes=5):
            raise ValueError(f"This series is not hourly: its readings are typically {step} apart. The course "
                             "forecasts hourly data; upload hourly (or finer) readings.")
        report.readings_per_hour = float(pd.Timedelta(hours=1) / step) if step > pd.Timedelta(0) else 1.0
    hourly = series.resample("h")
    series = hourly.sum(min_count=1) if aggregation == "sum" else hourly.mean()

    missing = series.isna().to_numpy()
    report.missing_hours = int(missing.sum())
    starts, ends = _runs(missing)
    lengths = ends - starts
    short = lengths <= max_gap
    long_idx = np.flatnonzero(~short)
    report.long_gaps = [(series.index[starts[i]], series.index[ends[i] - 1], int(lengths[i])) for i in long_idx]
    if report.long_gaps:
        if policy == "refuse":
            worst = sorted(report.long_gaps, key=lambda g: -g[2])[:5]
            listing = "; ".join(f"{h:,} h from {a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}" for a, b, h in worst)
            raise ValueError(f"The series has {len(report.long_gaps):,} gaps longer than {max_gap} h "
                             f"(longest: {listing}). Interpolating them would invent data. Allow longer gaps, "
                             "choose 'use the longest clean stretch', or upload a stretch without them.")
        blocked = np.zeros(len(series), dtype=bool)
        for i in long_idx:
            blocked[starts[i]:ends[i]] = True
        ok_starts, ok_ends = _runs(~blocked)
        best = int(np.argmax(ok_ends - ok_starts))
        keep = slice(int(ok_starts[best]), int(ok_ends[best]))
        report.hours_dropped = int(len(series) - (ok_ends[best] - ok_starts[best]))
        series = series.iloc[keep]
    gaps = np.diff(np.r_[0, series.isna().to_numpy().astype(np.int8), 0])
    gap_lengths = np.flatnonzero(gaps == -1) - np.flatnonzero(gaps == 1)  # all short now, in what is kept
    report.short_gaps = int(len(gap_lengths))
    report.hours_interpolated = int(gap_lengths.sum())
    series = series.interpolate(method="linear", limit_area="inside")
    series.name = value_col
    series.index.name = "time"
    report.start, report.end, report.hours_used = series.index[0], series.index[-1], len(series)
    if len(series) < MIN_HOURS:
        raise ValueError(f"Only {len(series):,} usable consecutive hours remain after cleaning; at least "
                         f"{MIN_HOURS} are needed for training and validation windows. "
                         + ("Allow longer gaps to be interpolated, or upload a longer series."
                            if report.long_gaps else "Upload a longer series."))
    return Cleaned(series.astype(np.float64), report)


def series_from_table(table: SeriesTable, **kwargs) -> Cleaned:
    return clean_hourly(table.frame, table.time_col, table.value_col, **kwargs)


# ============================================================================ windows and scaling


def build_window(data: np.ndarray, h: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """The course's ``build_window``: inputs ``data[i:i+h]``, targets ``data[i+h:i+h+f]``.

    Written as in the text (its loop stops one window early: ``range(len(data)-h-f)``), so 13,980
    points with h=6, f=24 give X (13950, 1, 6) and Y (13950, 24)."""
    dataX, dataY = [], []
    for i in range(len(data) - h - f):
        dataX.append(data[i:(i + h)])
        dataY.append(data[(i + h):(i + h + f)])
    dataX = np.array(dataX)
    dataX = np.reshape(dataX, (dataX.shape[0], 1, dataX.shape[1]))
    dataY = np.array(dataY)
    return dataX, dataY


def course_split(n_points: int, n_windows: int, fraction: float = TRAIN_FRACTION) -> int:
    """Number of training windows, as the course computes it: ``int(0.8 * len(raw_data))``.

    That is 80% of the *points* (11,184 of 13,950 windows for 13,980 points), taken in time order."""
    n = int(fraction * n_points)
    if not 0 < n < n_windows:
        raise ValueError(f"{n_points} hours give {n_windows} windows, too few to keep {fraction:.0%} for "
                         "training and still validate on the rest.")
    return n


@dataclass(frozen=True)
class Scaler:
    """Min-max scaling to [0, 1] with the minimum and maximum of the training part only."""
    lo: float
    hi: float

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        lo, hi = float(np.min(values)), float(np.max(values))
        if not hi > lo:
            raise ValueError("The training part of the series is constant; there is nothing to forecast.")
        return cls(lo, hi)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.lo) / (self.hi - self.lo)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * (self.hi - self.lo) + self.lo


def calendar_features(index: pd.DatetimeIndex, extras: Sequence[str]) -> np.ndarray:
    """sin/cos of hour of day and day of week: 23:00 and 00:00 are neighbours, not 23 apart."""
    cols = []
    for extra in extras:
        if extra == "hour of day":
            angle = 2 * np.pi * (index.hour.to_numpy() + index.minute.to_numpy() / 60) / 24
        elif extra == "day of week":
            angle = 2 * np.pi * (index.dayofweek.to_numpy() + index.hour.to_numpy() / 24) / 7
        else:
            raise ValueError(f"Unknown extra input {extra!r}; choose from {EXTRA_INPUTS}.")
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(index), 0))


@dataclass(frozen=True)
class Prepared:
    """Everything one training run needs, fixed at the moment the learner pressed Start."""
    series: pd.Series           # hourly, original units
    scaled: np.ndarray          # the whole series scaled with the training part's min and max
    scaler: Scaler
    h: int
    f: int
    layout: str
    extras: tuple[str, ...]
    n_train: int                # training windows (the first ones, in time order)
    fit_end: int                # points [0, fit_end) are the training part: every point a training window sees
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    origins_val: np.ndarray     # position in the series of each validation window's first forecast hour

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(int(d) for d in self.X_train.shape[1:])  # type: ignore[return-value]

    @property
    def n_windows(self) -> int:
        return len(self.X_train) + len(self.X_val)

    def origin_times(self) -> pd.DatetimeIndex:
        return self.series.index[self.origins_val]


def shape_inputs(X: np.ndarray, layout: Layout, calendar: np.ndarray | None = None,
                 starts: np.ndarray | None = None) -> np.ndarray:
    """Course layout (n, 1, h): one time step of h features; sequence (n, h, 1): h steps of one value.

    With calendar features, the course layout appends those of the first forecast hour; the
    sequence layout gives every step the features of its own hour."""
    n, _, h = X.shape
    if layout == "course":
        out = X
        if calendar is not None and calendar.shape[1]:
            out = np.concatenate([X, calendar[starts + h][:, None, :]], axis=2)
    elif layout == "sequence":
        out = X[:, 0, :, None]
        if calendar is not None and calendar.shape[1]:
            steps = calendar[starts[:, None] + np.arange(h)[None, :]]
            out = np.concatenate([out, steps], axis=2)
    else:
        raise ValueError("layout must be 'course' (1 step of h features) or 'sequence' (h steps of 1 feature).")
    return out.astype(np.float32)


def prepare(series: pd.Series, *, h: int = HISTORY_HOURS, f: int = FORECAST_HOURS, layout: Layout = "course",
            extras: Sequence[str] = (), train_fraction: float = TRAIN_FRACTION) -> Prepared:
    """Scale (fitted on the training part), window, split in time order and shape the inputs."""
    values = np.asarray(series, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("The series has missing values; clean it with clean_hourly first.")
    n_windows = len(values) - h - f
    if n_windows < 2:
        raise ValueError(f"A series of {len(values)} hours is too short for {h} + {f} hour windows.")
    n_train = course_split(len(values), n_windows, train_fraction)
    fit_end = n_train - 1 + h + f
    scaler = Scaler.fit(values[:fit_end])
    scaled = scaler.transform(values).astype(np.float32)  # what Keras trains on; baselines read the same numbers
    X, Y = build_window(scaled, h, f)
    starts = np.arange(n_windows)
    calendar = calendar_features(pd.DatetimeIndex(series.index), extras) if extras else None
    X = shape_inputs(X, layout, calendar, starts)
    Y = Y.astype(np.float32)
    return Prepared(series, scaled, scaler, h, f, layout, tuple(extras), n_train, fit_end,
                    X[:n_train], Y[:n_train], X[n_train:], Y[n_train:], starts[n_train:] + h)


def take_last(series: pd.Series, hours: int | None) -> pd.Series:
    """The most recent ``hours`` hours (all when None or longer than the series)."""
    return series if not hours or hours >= len(series) else series.iloc[-int(hours):]


# ============================================================================ the networks


def build_forecaster(kind: str, input_shape: tuple[int, int], f: int = FORECAST_HOURS, units: int = UNITS,
                     optimizer: str = "rmsprop") -> "keras.Model":
    """The course's three networks (compiled with MSE loss and MAE metric, Keras' default rmsprop).

    Dense: Flatten, Dense(16, relu), Dense(24). SimpleRNN(16) + Dense(24). LSTM(16) + Dense(24)."""
    import keras
    from keras import layers

    # explicit layer names: Keras' automatic ones depend on how many layers this process built before
    model = keras.Sequential(name=f"{kind.lower()}_forecaster")
    model.add(keras.Input(shape=tuple(input_shape)))
    if kind == "Dense":
        model.add(layers.Flatten(name="flatten"))
        model.add(layers.Dense(units, activation="relu", name="hidden"))
    elif kind == "SimpleRNN":
        model.add(layers.SimpleRNN(units, name="simple_rnn"))
    elif kind == "LSTM":
        model.add(layers.LSTM(units, name="lstm"))
    else:
        raise ValueError(f"Unknown model {kind!r}; choose one of {MODEL_KINDS}.")
    model.add(layers.Dense(f, name="forecast"))
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return model


def expected_params(kind: str, input_shape: tuple[int, int], f: int = FORECAST_HOURS, units: int = UNITS) -> int:
    """The parameter count by the course's formulas (tests check Keras agrees)."""
    steps, features = input_shape
    head = units * f + f
    if kind == "Dense":
        return steps * features * units + units + head
    if kind == "SimpleRNN":
        return units * (features + units + 1) + head
    if kind == "LSTM":
        return 4 * units * (features + units + 1) + head
    raise ValueError(f"Unknown model {kind!r}.")


def predict(model: "keras.Model", X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X, batch_size=1024, verbose=0), dtype=np.float64)


# ============================================================================ classical baselines


def persistence(scaled: np.ndarray, origins: np.ndarray, f: int = FORECAST_HOURS) -> np.ndarray:
    """The last observed hour, repeated for every hour ahead."""
    last = np.asarray(scaled, dtype=np.float64)[np.asarray(origins) - 1]
    return np.repeat(last[:, None], f, axis=1)


def seasonal_naive(scaled: np.ndarray, origins: np.ndarray, f: int = FORECAST_HOURS,
                   season: int = SEASON) -> np.ndarray:
    """Same hour yesterday (the last observed day, repeated beyond 24 h).

    It reads the series itself, not only the 6-hour window, so it needs 24 h of history before each
    origin; origins with less get NaN."""
    data = np.asarray(scaled, dtype=np.float64)
    origins = np.asarray(origins)
    k = np.arange(f)
    idx = origins[:, None] + k[None, :] - season * (k[None, :] // season + 1)
    out = np.full(idx.shape, np.nan)
    ok = idx >= 0
    out[ok] = data[idx[ok]]
    return out


@dataclass
class ArimaResult:
    forecasts: np.ndarray             # (n_origins, f), scaled units
    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int]
    fit_hours: int                    # the last hours of the training part used to estimate the parameters
    fit_seconds: float
    filter_seconds: float
    params: dict[str, float]
    converged: bool

    @property
    def label(self) -> str:
        p, d, q = self.order
        P, D, Q, s = self.seasonal_order
        return f"SARIMA({p},{d},{q})({P},{D},{Q}){s}" if s else f"ARIMA({p},{d},{q})"


ARIMA_CHOICES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int, int]]] = {
    "SARIMA(1,0,1)(0,1,1)24": ((1, 0, 1), (0, 1, 1, 24)),
    "SARIMA(2,0,0)(0,1,1)24": ((2, 0, 0), (0, 1, 1, 24)),
    "ARIMA(2,0,1)": ((2, 0, 1), (0, 0, 0, 0)),
}


def _state_forecasts(results, origins: np.ndarray, f: int) -> np.ndarray:
    """f-step forecasts from every origin at once, from the Kalman filter's predicted states.

    ``predicted_state[:, t]`` is the state at t given the data up to t-1, so iterating the
    (time-invariant) transition f times gives exactly what ``forecast(f)`` would return after
    filtering the series up to t-1 - for all origins in one vectorised pass."""
    fr = results.filter_results

    def mat(name: str, ndim: int) -> np.ndarray:
        m = np.asarray(getattr(fr, name))
        if m.ndim == ndim + 1:  # a trailing time axis
            if m.shape[-1] > 1 and not np.allclose(m, m[..., :1]):
                raise ValueError(f"The state-space {name} varies in time; vectorised forecasts need a fixed one.")
            m = m[..., 0]
        return m

    Z, T = mat("design", 2), mat("transition", 2)
    d, c = mat("obs_intercept", 1).reshape(-1), mat("state_intercept", 1).reshape(-1)
    a = np.asarray(fr.predicted_state)[:, np.asarray(origins)]  # (k_states, n_origins)
    out = np.empty((len(origins), f))
    for k in range(f):
        out[:, k] = (Z @ a)[0] + d[0]
        a = T @ a + c[:, None]
    return out


def _one_blas_thread():
    """The Kalman filter multiplies ~30x30 matrices: BLAS threads only fight each other (and, on a
    shared server, other learners' jobs) - measured 15x slower on a loaded 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def arima_forecasts(scaled: np.ndarray, fit_end: int, origins: np.ndarray, f: int = FORECAST_HOURS,
                    order: tuple[int, int, int] = (1, 0, 1),
                    seasonal_order: tuple[int, int, int, int] = (0, 1, 1, 24),
                    fit_hours: int | None = 24 * 7 * 4, maxiter: int = 50) -> ArimaResult:
    """A (S)ARIMA fitted on the training part, forecasting f hours from each origin.

    Parameters are estimated once, on the last ``fit_hours`` of the training part (the likelihood of
    a 24-hour seasonal model is slow to optimise on a whole year); then the model is re-run with those
    fixed parameters from the start of that stretch to the end of the series (``apply``: filtering
    only, no refit), and each origin's forecast uses only the hours before it."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    data = np.asarray(scaled, dtype=np.float64)
    start = 0 if not fit_hours else max(0, fit_end - int(fit_hours))
    train = data[start:fit_end]
    if len(train) < 3 * max(seasonal_order[3], 1) + 10:
        raise ValueError(f"The training part ({len(train)} h) is too short to fit {order}x{seasonal_order}.")
    t0 = time.perf_counter()
    with warnings.catch_warnings(), _one_blas_thread():
        warnings.simplefilter("ignore")  # convergence chatter: reported through ``converged`` instead
        # a constant only for a model without differencing: after differencing it would be a drift
        trend = "c" if order[1] == 0 and seasonal_order[1] == 0 else "n"
        model = SARIMAX(train, order=order, seasonal_order=seasonal_order, trend=trend)
        fitted = model.fit(disp=False, maxiter=maxiter)
        t1 = time.perf_counter()
        full = fitted.apply(data[start:])
    t2 = time.perf_counter()
    origins = np.asarray(origins)
    if origins.min() <= start:
        raise ValueError("Every forecast origin must come after the start of the fitted stretch.")
    forecasts = _state_forecasts(full, origins - start, f)
    converged = bool(fitted.mle_retvals.get("converged", True)) if fitted.mle_retvals else True
    names = list(getattr(fitted.model, "param_names", [f"p{i}" for i in range(len(fitted.params))]))
    return ArimaResult(forecasts, tuple(order), tuple(seasonal_order), len(train), t1 - t0, t2 - t1,
                       dict(zip(names, map(float, fitted.params))), converged)


@dataclass(frozen=True)
class ArimaTask:
    """The classical model's fit as a job task (``ModelRun(task=...)``): a seasonal ARIMA takes seconds
    of CPU per setting, so a worker fits it in a training slot, never the web process, and the run
    store keeps it for the class (each setting is fitted once, and a reload keeps it)."""

    scaled: np.ndarray
    fit_end: int
    origins: np.ndarray
    f: int
    choice: str

    def __call__(self, job: Any, name: str) -> dict[str, Any]:
        order, seasonal = ARIMA_CHOICES[self.choice]
        job.report_task(name, 0, 1)
        res = arima_forecasts(self.scaled, self.fit_end, self.origins, self.f, order, seasonal)
        job.report_task(name, 1, 1)
        return {"forecasts": res.forecasts, **{k: getattr(res, k) for k in _ARIMA_STORED}}


_ARIMA_STORED = ("fit_hours", "fit_seconds", "filter_seconds", "params", "converged")  # plain results of a fit


def arima_from_task(choice: str, results: dict[str, Any], forecasts: np.ndarray) -> ArimaResult:
    """The ``ArimaResult`` an ``ArimaTask`` run stored (its plain results and its forecasts array)."""
    order, seasonal = ARIMA_CHOICES[choice]
    return ArimaResult(np.asarray(forecasts), order, seasonal, **{k: results[k] for k in _ARIMA_STORED})


# ============================================================================ scoring


def scores(forecasts: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MSE and MAE over every validation window and every hour ahead (what Keras reports as val_loss)."""
    err = np.asarray(forecasts, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    rows = ~np.isnan(err).any(axis=1)
    if not rows.any():
        return {"mse": float("nan"), "mae": float("nan"), "windows": 0}
    err = err[rows]
    return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))), "windows": int(rows.sum())}


def horizon_mse(forecasts: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """MSE for each hour ahead: how fast each method's forecasts degrade."""
    err = np.asarray(forecasts, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return np.nanmean(err ** 2, axis=0)


def baseline_forecasts(prep: Prepared) -> dict[str, np.ndarray]:
    return {"Persistence": persistence(prep.scaled, prep.origins_val, prep.f),
            "Seasonal naive": seasonal_naive(prep.scaled, prep.origins_val, prep.f)}


def results_table(forecasts: dict[str, np.ndarray], prep: Prepared, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per method: validation MSE and MAE (scaled, as the course reports), MAE in the series' units."""
    rows = []
    span = prep.scaler.hi - prep.scaler.lo
    for name, fc in forecasts.items():
        s = scores(fc, prep.Y_val)
        rows.append({"method": name, "kind": (kinds or {}).get(name, ""), "val MSE": s["mse"], "val MAE": s["mae"],
                     "MAE (original units)": s["mae"] * span, "windows scored": s["windows"]})
    return pd.DataFrame(rows)


# ============================================================================ the ranking, short and long runs

# The course's validation MSE after 500 epochs, on its own freeway sensor (Video 6).
COURSE_MSE = {"Dense": 2.17e-2, "SimpleRNN": 2.06e-2, "LSTM": 1.91e-2}


def networks_mse(metrics: dict[str, Any]) -> dict[str, float]:
    """Each network's validation MSE from a run's stored metrics (``val_mse``, else ``val_loss``, the same)."""
    out = {}
    for name in MODEL_KINDS:
        row = metrics.get(name)
        if isinstance(row, dict):
            value = row.get("val_mse", row.get("val_loss"))
            if isinstance(value, (int, float)) and np.isfinite(value):
                out[name] = float(value)
    return out


def ranking(mse: dict[str, float]) -> list[str]:
    """Best first (lowest validation MSE)."""
    return sorted(mse, key=mse.get)


def _epochs(n: int) -> str:
    return f"{n:,} epoch" + ("" if n == 1 else "s")


def ranking_frame(run: dict[str, float], run_epochs: int, reference: dict[str, float] | None,
                  reference_epochs: int | None, label: str = "this run") -> pd.DataFrame:
    """This run's networks beside the long reference run and the course's own figures: MSE and rank.
    (Before a run, ``run`` is the reference itself, labelled "reference", and ``reference`` None.)"""
    columns = [(f"{label}, {_epochs(run_epochs)}", run)]
    if reference:
        columns.append((f"reference, {_epochs(reference_epochs or 0)}", {k: v for k, v in reference.items() if k in run}))
    columns.append(("the course (its freeway), 500 epochs", {k: v for k, v in COURSE_MSE.items() if k in run}))
    rows = []
    for name in run:
        row: dict[str, Any] = {"network": name}
        for label, mse in columns:
            if name in mse:
                row[f"{label}: val MSE"] = mse[name]
                row[f"{label}: rank"] = ranking(mse).index(name) + 1
        rows.append(row)
    return pd.DataFrame(rows)


def ranking_words(run: dict[str, float], run_epochs: int, reference: dict[str, float] | None,
                  reference_epochs: int | None) -> str:
    """What a (short) run's ranking says next to the long reference run's (the course's ranking: LSTM
    best, then SimpleRNN, then dense)."""
    mine = ranking(run)
    words = f"After {_epochs(run_epochs)} this run ranks **{' < '.join(mine)}** (lowest validation MSE first)"
    if not reference or len(mine) < 2:
        return words + "."
    theirs = ranking({k: v for k, v in reference.items() if k in run})
    course = ranking({k: v for k, v in COURSE_MSE.items() if k in run})
    if mine == theirs:
        return words + (f", the same order as the {reference_epochs:,}-epoch reference run"
                        + (" and the course." if theirs == course else "."))
    reversed_ = mine == theirs[::-1]
    return (words + f"; the {reference_epochs:,}-epoch reference run ranks **{' < '.join(theirs)}**"
            + (" (the course's order)" if theirs == course else "") + ". "
            + ("The order is reversed: " if reversed_ else "The order differs: ")
            + (f"{_epochs(run_epochs)} {'is' if run_epochs == 1 else 'are'} too few for the recurrent networks, which have more weights to set, "
               "to catch up with the dense one. The ranking is a statement about trained networks; train longer "
               f"(the course: {COURSE_EPOCHS}) before reading it." if run_epochs < (reference_epochs or 0)
               else "the runs differ in more than their length; compare their settings."))


# ============================================================================ the LSTM cell, opened


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class LstmStep:
    """One time step of the course's LSTM equations, with the numbers of a trained cell."""
    x: np.ndarray          # X_k, the input at this step
    y_prev: np.ndarray     # y_{k-1}
    c_prev: np.ndarray     # C_{k-1}
    forget: np.ndarray     # sigma_1 = sigma(A_y1 y_{k-1} + A_x1 X_k + b_1)
    input: np.ndarray      # sigma_2
    candidate: np.ndarray  # U_k = tanh(...)
    cell: np.ndarray       # C_k = sigma_1 C_{k-1} + sigma_2 U_k
    output: np.ndarray     # sigma_3
    y: np.ndarray          # y_k = sigma_3 tanh(C_k)


def lstm_layer(model: "keras.Model"):
    for layer in model.layers:
        if type(layer).__name__ == "LSTM":
            return layer
    raise ValueError("This model has no LSTM layer.")


def lstm_gates(model: "keras.Model", window: np.ndarray) -> list[LstmStep]:
    """Step the trained LSTM through one input window with NumPy, gate by gate.

    Keras stores the four dense layers side by side in one kernel, in the order input (sigma_2),
    forget (sigma_1), candidate (U), output (sigma_3)."""
    layer = lstm_layer(model)
    if getattr(layer, "go_backwards", False) or getattr(layer, "return_sequences", False):
        raise ValueError("Only a forward LSTM that returns its last output is supported.")
    act = getattr(layer.activation, "__name__", "")
    rec = getattr(layer.recurrent_activation, "__name__", "")
    if act != "tanh" or rec != "sigmoid":
        raise ValueError(f"Expected tanh/sigmoid activations, found {act}/{rec}.")
    weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
    kernel, recurrent = weights[0], weights[1]
    units = recurrent.shape[0]
    bias = weights[2] if len(weights) > 2 else np.zeros(4 * units)
    window = np.asarray(window, dtype=np.float64)
    if window.ndim != 2 or window.shape[1] != kernel.shape[0]:
        raise ValueError(f"The window must be (steps, {kernel.shape[0]}), got {window.shape}.")
    y = np.zeros(units)
    c = np.zeros(units)
    steps = []
    for x in window:
        z = x @ kernel + y @ recurrent + bias
        i_gate = _sigmoid(z[:units])
        f_gate = _sigmoid(z[units:2 * units])
        u = np.tanh(z[2 * units:3 * units])
        o_gate = _sigmoid(z[3 * units:])
        c_new = f_gate * c + i_gate * u
        y_new = o_gate * np.tanh(c_new)
        steps.append(LstmStep(x, y, c, f_gate, i_gate, u, c_new, o_gate, y_new))
        y, c = y_new, c_new
    return steps


def dense_head(model: "keras.Model", y: np.ndarray) -> np.ndarray:
    """The 24-hour forecast from the LSTM's last output: the final Dense layer, by hand."""
    w, b = (np.asarray(a, dtype=np.float64) for a in model.layers[-1].get_weights())
    return np.asarray(y, dtype=np.float64) @ w + b


def gates_frame(steps: list[LstmStep], step: int) -> pd.DataFrame:
    """One step's quantities as a table: one row per unit, one column per equation."""
    s = steps[step]
    return pd.DataFrame({
        "unit": np.arange(1, len(s.y) + 1),
        "y_{k-1}": s.y_prev, "C_{k-1}": s.c_prev,
        "σ1 forget": s.forget, "σ2 input": s.input, "U candidate": s.candidate,
        "C_k = σ1·C_{k-1} + σ2·U": s.cell, "σ3 output": s.output, "y_k = σ3·tanh(C_k)": s.y,
    })


# ============================================================================ figures

def _color(name: str, i: int = 0) -> str:
    """Every series in its colour of every chart of the app (``dnn2core.style``)."""
    from dnn2core.style import model_color

    return model_color(name)


def _dash(name: str) -> str:
    return "dot" if name in ("Persistence", "Seasonal naive") or "ARIMA" in name else "solid"


def series_figure(series: pd.Series, title: str, y_title: str, hours: int | None = 300,
                  height: int = 300) -> "go.Figure":
    """The first hours of the series, as the course shows its first 300 hours."""
    import plotly.graph_objects as go

    s = series if not hours else series.iloc[:hours]
    fig = go.Figure(go.Scatter(x=s.index, y=s.to_numpy(), mode="lines", line=dict(color="#1f77b4", width=1.5),
                               name=str(series.name)))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), yaxis_title=y_title)
    return fig


def overview_figure(series: pd.Series, title: str, y_title: str, height: int = 320) -> "go.Figure":
    """A long hourly series readable at a glance: each day's range (lowest to highest hour) as a band
    and its mean as a line, instead of thousands of hourly zigzags merging into a block; the hours
    themselves one legend click away; a range slider to zoom into weeks."""
    import plotly.graph_objects as go

    daily = series.resample("D").agg(["min", "max", "mean"]).dropna()
    color = "#1f77b4"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=daily.index, y=daily["max"], mode="lines", line=dict(width=0, color=color),
                             name="daily highest", showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=daily.index, y=daily["min"], mode="lines", line=dict(width=0, color=color),
                             fill="tonexty", fillcolor="rgba(31,119,180,0.25)", name="each day: lowest to highest hour"))
    fig.add_trace(go.Scatter(x=daily.index, y=daily["mean"], mode="lines", line=dict(color=color, width=1.5),
                             name="daily mean"))
    fig.add_trace(go.Scatter(x=series.index, y=series.to_numpy(), mode="lines", line=dict(color="#555555", width=0.8),
                             name="every hour", visible="legendonly"))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), yaxis_title=y_title,
                      legend=dict(orientation="h", y=-0.55),
                      xaxis=dict(rangeslider=dict(visible=True), type="date"))
    return fig


def window_figure(prep: Prepared, window: int, forecasts: dict[str, np.ndarray], scale: str = "scaled",
                  height: int = 380) -> "go.Figure":
    """One validation window: the h hours the models saw, the f true hours and every forecast."""
    import plotly.graph_objects as go

    origin = int(prep.origins_val[window])
    idx = prep.series.index
    back = min(SEASON, origin)
    hist_t = idx[origin - back:origin]
    fut_t = idx[origin:origin + prep.f]
    conv = (lambda v: prep.scaler.inverse(v)) if scale == "original" else (lambda v: np.asarray(v))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=hist_t, y=conv(prep.scaled[origin - back:origin]), mode="lines",
                             line=dict(color="#bbbbbb"), name="earlier hours"))
    fig.add_trace(go.Scatter(x=idx[origin - prep.h:origin], y=conv(prep.scaled[origin - prep.h:origin]),
                             mode="lines+markers", line=dict(color="#000000", width=3), name=f"input ({prep.h} h)"))
    fig.add_trace(go.Scatter(x=fut_t, y=conv(prep.Y_val[window]), mode="lines+markers",
                             line=dict(color="#000000"), name=f"truth ({prep.f} h)"))
    for i, (name, fc) in enumerate(forecasts.items()):
        fig.add_trace(go.Scatter(x=fut_t, y=conv(fc[window]), mode="lines", name=name,
                                 line=dict(color=_color(name, i), dash=_dash(name), width=2)))
    fig.add_vline(x=idx[origin], line=dict(color="#999999", dash="dash"))
    fig.update_layout(title=f"Forecast from {idx[origin]:%a %Y-%m-%d %H:%M}", height=height,
                      margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_title="scaled value (0-1)" if scale == "scaled" else str(prep.series.name),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def one_step_figure(prep: Prepared, forecasts: dict[str, np.ndarray], height: int = 380) -> "go.Figure":
    """One hour ahead, over the whole validation stretch: the first hour of every window's forecast."""
    import plotly.graph_objects as go

    t = prep.origin_times()
    fig = go.Figure(go.Scatter(x=t, y=prep.Y_val[:, 0], mode="lines", name="truth",
                               line=dict(color="#000000", width=1.5)))
    for i, (name, fc) in enumerate(forecasts.items()):
        fig.add_trace(go.Scatter(x=t, y=fc[:, 0], mode="lines", name=name,
                                 line=dict(color=_color(name, i), dash=_dash(name), width=1)))
    end = t[min(len(t) - 1, 14 * 24)]
    fig.update_layout(title="One hour ahead, across the validation period (drag the slider below for more)",
                      height=height, margin=dict(l=10, r=10, t=40, b=10), yaxis_title="scaled value (0-1)",
                      xaxis=dict(range=[t[0], end], rangeslider=dict(visible=True)),
                      legend=dict(orientation="h", y=-0.45))
    return fig


def horizon_figure(prep: Prepared, forecasts: dict[str, np.ndarray], height: int = 320) -> "go.Figure":
    import plotly.graph_objects as go

    fig = go.Figure()
    hours = np.arange(1, prep.f + 1)
    for i, (name, fc) in enumerate(forecasts.items()):
        fig.add_trace(go.Scatter(x=hours, y=horizon_mse(fc, prep.Y_val), mode="lines+markers", name=name,
                                 line=dict(color=_color(name, i), dash=_dash(name))))
    fig.update_layout(title="Validation MSE by hour ahead", height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="hours ahead", yaxis_title="MSE (scaled)", legend=dict(orientation="h", y=-0.3))
    return fig


GATE_QUANTITIES = (("σ1 forget", "forget", (0, 1)), ("σ2 input", "input", (0, 1)),
                   ("U candidate", "candidate", (-1, 1)), ("C_k cell state", "cell", None),
                   ("σ3 output", "output", (0, 1)), ("y_k output", "y", (-1, 1)))


def _gate_range(z: np.ndarray, rng: tuple[float, float] | None) -> tuple[float, float]:
    if rng is not None:
        return rng
    lim = float(np.max(np.abs(z))) or 1.0  # the cell state is unbounded: symmetric around 0
    return (-lim, lim)


def gates_figure(steps: list[LstmStep], height: int | None = None) -> "go.Figure":
    """Every gate of every step. Several steps (the true sequence): one heat map per quantity, rows =
    time steps, columns = units. One step (the course's layout): one labelled row per quantity, so the
    single step reads as six short strips with their values, not one stretched row."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    units = np.arange(1, len(steps[0].y) + 1)
    if len(steps) == 1:
        fig = make_subplots(rows=len(GATE_QUANTITIES), cols=1, vertical_spacing=0.045,
                            subplot_titles=[n for n, _, _ in GATE_QUANTITIES])
        for i, (label, attr, rng) in enumerate(GATE_QUANTITIES, start=1):
            z = np.asarray(getattr(steps[0], attr), dtype=float)[None, :]
            lo, hi = _gate_range(z, rng)
            fig.add_trace(go.Heatmap(z=z, zmin=lo, zmax=hi, colorscale="Viridis" if lo == 0 else "RdBu_r",
                                     showscale=False, x=units, y=[""], texttemplate="%{z:.2f}",
                                     hovertemplate=f"{label}<br>unit %{{x}}: %{{z:.3f}}<extra></extra>"),
                          row=i, col=1)
            fig.update_xaxes(showticklabels=(i == len(GATE_QUANTITIES)), dtick=1, row=i, col=1)
        fig.update_xaxes(title_text="unit", row=len(GATE_QUANTITIES), col=1)
        fig.update_layout(height=height or 80 * len(GATE_QUANTITIES) + 60, margin=dict(l=10, r=10, t=40, b=10))
        return fig
    fig = make_subplots(rows=1, cols=len(GATE_QUANTITIES), subplot_titles=[n for n, _, _ in GATE_QUANTITIES],
                        horizontal_spacing=0.02)
    for j, (label, attr, rng) in enumerate(GATE_QUANTITIES, start=1):
        z = np.stack([getattr(s, attr) for s in steps])
        lo, hi = _gate_range(z, rng)
        fig.add_trace(go.Heatmap(z=z, zmin=lo, zmax=hi, colorscale="Viridis" if lo == 0 else "RdBu_r",
                                 showscale=False, x=units, y=[f"k={k + 1}" for k in range(len(steps))],
                                 hovertemplate=f"{label}<br>unit %{{x}}, %{{y}}: %{{z:.3f}}<extra></extra>"),
                      row=1, col=j)
        fig.update_yaxes(autorange="reversed", showticklabels=(j == 1), row=1, col=j)
        fig.update_xaxes(title_text="unit" if j == 1 else None, row=1, col=j)
    fig.update_layout(height=height or min(560, 140 + 26 * len(steps)), margin=dict(l=10, r=10, t=40, b=10))
    return fig
