"""Live training on the page: the run of the current settings, live or from the run store.

The link is the experiment: a page computes a ``RunSpec`` from its settings and ``run_panel``
shows the run with that key. A finished run is drawn from the store at once (nobody presses
Start); a live one is watched through a fragment that polls once a second, however many learners
watch it; otherwise Start trains it. Jobs train in worker threads that make no Streamlit calls
(``dnn2core.jobs``). The session keeps only run keys (short strings); every run's data lives in
the store.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import streamlit as st

from dnn2core.env import env_number
from dnn2core import classroom, plots
from dnn2core.jobs import JobRegistry, LearnerLimit, RunView
from dnn2core.runs import (LIVE_STATES, WATCH_WINDOW_S, RunRecord, RunSpec, RunStore, StoreError,
                           default_runs_dir)
from dnn2core.training import (Budget, JobGate, ModelRun, QueueFull, continue_epochs, default_max_jobs,
                               format_eta)
from dnn2core.cluster import ray_address
from dnn2core.workers import default_workers, shared_pool
from dnn2ui import runtime

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "assets" / "reference"
_OWN = "_runs.own"  # [(page, key)] this session started
_WATCHING = "_runs.watching"  # keys this session saw live: kept alive from every page
_ON_SCREEN = "_runs.on_screen"  # {key: "queued" | "running"}: the live views this page run drew
KEEPALIVE_S = 5.0  # a run watched from another page is told so this often (well inside DNN2_IDLE_SECONDS)
BACKSTOP_S = 15.0  # a page that shows its own live views checks them this often (their fragments poll)
QUEUED_BACKSTOP_S = 60.0  # ... and this often while all it shows is a place in the queue
QUEUED_POLL_S = 5.0  # a learner waiting in the queue polls rarely: each poll is a script run that costs
# their browser 0.1-0.2 s of CPU on the MNIST page (bench_tab_cost.py), and in a lab the browsers share
# the server's cores
QUEUED_FAR_POLL_S = 10.0  # further back than first in line: the learner cannot be admitted before the
# one ahead of them, so their place is updated less often


@st.cache_resource(show_spinner=False)
def shared_gate() -> JobGate:
    """One gate per server process: at most N jobs train at once, the rest queue in order."""
    return JobGate(default_max_jobs(), max_waiting=int(env_number("DNN2_MAX_WAITING", 50, whole=True, minimum=1)))


@st.cache_resource(show_spinner=False, max_entries=4)
def _registry(runs_dir: str) -> tuple[JobRegistry, str | None]:
    """The server's registry over its run store; a store that cannot be opened falls back to a
    temporary one, with the reason, so pages keep working."""
    try:
        store = RunStore(runs_dir, reference_dir=REFERENCE_DIR)
        problem = " ".join(store.notes) or None
    except StoreError as exc:
        import atexit
        import shutil
        import tempfile

        fallback = tempfile.mkdtemp(prefix="dnn2-runs-")
        atexit.register(shutil.rmtree, fallback, True)  # a temporary store leaves nothing behind
        store = RunStore(fallback, reference_dir=REFERENCE_DIR)
        problem = f"{exc} Runs are kept in a temporary store until the server restarts."
    workers = 0 if ray_address() is not None else default_workers()  # on a cluster, Ray trains
    reg = JobRegistry(store, shared_gate(), pool=shared_pool(workers) if workers else None)
    reg.quiet_hooks.append(runtime.expire_disconnected_sessions)  # closed tabs' sessions leave memory
    return reg, problem


def registry() -> JobRegistry:
    reg, problem = _registry(str(default_runs_dir()))
    if problem and not st.session_state.get("_runs.problem_shown"):
        st.session_state["_runs.problem_shown"] = True
        st.warning(f"Run store: {problem}")
    return reg


def store() -> RunStore:
    return registry().store


def session_id() -> str:
    return st.session_state.setdefault("_owner", uuid.uuid4().hex[:12])


def private_secret() -> str:
    """The secret that makes a run on uploaded data private: kept in the uploader's link (``u``),
    so their refresh finds the run again and nobody else's key can match it."""
    raw = st.query_params.get("u", "")
    if isinstance(raw, str) and len(raw) == 16 and all(c in "0123456789abcdef" for c in raw):
        return raw
    secret = st.session_state.setdefault("_runs.secret", uuid.uuid4().hex[:16])
    st.query_params["u"] = secret
    return secret


def own_keys(page: str | None = None) -> list[str]:
    return [k for p, k in st.session_state.get(_OWN, []) if page is None or p == page]


def _remember(page: str, key: str) -> None:
    own = st.session_state.setdefault(_OWN, [])
    if (page, key) not in own:
        own.append((page, key))
    del own[:-50]  # keys only; the runs themselves live in the store


def _watch(key: str) -> None:
    watching = st.session_state.setdefault(_WATCHING, set())
    watching.add(key)
    store().watch(key, session_id())


def view(spec_or_key: RunSpec | str) -> RunView | None:
    key = spec_or_key if isinstance(spec_or_key, str) else spec_or_key.key
    return registry().view(key)


# --------------------------------------------------------------------------------------------
# Keeping runs alive from every page
# --------------------------------------------------------------------------------------------


def outdated_views(on_screen: Mapping[str, str], states: Mapping[str, str | None]) -> list[str]:
    """The runs whose live view on screen no longer matches the store: a queued view of a run that
    trains, or a live view of a run that has ended (or is gone). Their own fragments switch over
    with a full rerun; this is the backstop should a browser stop running one of them."""
    out = []
    for key, drawn in on_screen.items():
        state = states.get(key)
        if state not in LIVE_STATES or (drawn == "queued" and state == "running"):
            out.append(key)
    return out


def still_live(watching: set[str], states: Mapping[str, str | None]) -> set[str]:
    """The watched runs that still queue or train: a run that ended (or is gone) needs no keep-alive."""
    return {key for key in watching if states.get(key) in LIVE_STATES}


def begin_page_run() -> None:
    """Called by app.py before the page runs: the page records the live views it draws."""
    st.session_state[_ON_SCREEN] = {}


def _on_screen(key: str, state: str) -> None:
    st.session_state.setdefault(_ON_SCREEN, {})[key] = state


def _never_lapse(interval: float, idle_seconds: float) -> float:
    """A poll that also tells the store "still watched" must come well inside the run's idle budget
    (an unwatched run is abandoned) and the store's watch window (the watcher count, who may Stop)."""
    return min(interval, idle_seconds / 3, WATCH_WINDOW_S / 1.5)


def keepalive_interval(watching: set[str], on_screen: Mapping[str, str],
                       idle_seconds: float = 180.0) -> float | None:
    """How often the keep-alive fragment runs: every KEEPALIVE_S while a watched run is not on this
    page (nothing else tells the store), every BACKSTOP_S while the page's own live views poll (it
    only checks they have not fallen behind; QUEUED_BACKSTOP_S when they only wait in the queue, whose
    own polls are slow too), never when nothing is live."""
    if set(watching) - set(on_screen):
        return KEEPALIVE_S
    if not on_screen:
        return None
    if all(state == "queued" for state in on_screen.values()):
        return max(BACKSTOP_S, min(QUEUED_BACKSTOP_S, idle_seconds / 3))
    return BACKSTOP_S


def queued_poll_interval(position: int | None, idle_seconds: float = 180.0) -> float:
    """How often a queued view polls: every QUEUED_POLL_S first in line (admitted next, the view
    switches to the live one within seconds), every QUEUED_FAR_POLL_S further back; never so rarely
    that its run could be abandoned or its watch lapse (a short idle budget keeps QUEUED_POLL_S)."""
    if position is None or position <= 1:
        return QUEUED_POLL_S
    return max(QUEUED_POLL_S, _never_lapse(QUEUED_FAR_POLL_S, idle_seconds))


def _idle_seconds() -> float:
    return Budget.from_env().idle_seconds


_FRAGMENTS: dict[tuple[str, float], Callable] = {}


def _every(body: Callable, seconds: float) -> Callable:
    """``body`` as a fragment that reruns every ``seconds``: a view's poll interval is chosen per
    script run (one fragment per body and interval, made once per process)."""
    key = (body.__qualname__, seconds)
    if key not in _FRAGMENTS:
        def poll(*args, **kwargs):
            return body(*args, **kwargs)

        # its own name per interval, so each interval is its own fragment (and browser timer)
        poll.__module__, poll.__qualname__ = body.__module__, f"{body.__qualname__}_every_{seconds:g}s"
        _FRAGMENTS[key] = st.fragment(poll, run_every=seconds)
    return _FRAGMENTS[key]


def _states(keys: set[str]) -> dict[str, str | None]:
    """Each run's state in the store (None: gone)."""
    s = store()
    return {key: (rec.state if (rec := s.get(key)) is not None else None) for key in keys}


def _keep_alive_round(every: float) -> None:
    watching: set = st.session_state.get(_WATCHING, set())
    on_screen = st.session_state.get(_ON_SCREEN, {})
    states = _states(watching | set(on_screen))
    watching.intersection_update(still_live(watching, states))
    s = store()
    for key in watching:
        s.watch(key, session_id())
    if outdated_views(on_screen, states):
        st.session_state[_ON_SCREEN] = {}
        st.rerun()  # one full rerun draws the run as it is now
    if keepalive_interval(watching, on_screen, _idle_seconds()) != every:
        st.rerun()  # e.g. the watched run ended: one full rerun, and this page stops polling


def keep_alive() -> None:
    """Called by app.py on every page: while this session watches a live run, a small fragment
    tells the store so every few seconds (the run is abandoned only when no session watches), and
    redraws the page should a live view on it have fallen behind the store. Runs that have ended
    are let go first: a learner reading a finished run's page costs nothing (it polled every 5 s
    before, for as long as the tab stayed open)."""
    watching: set = st.session_state.get(_WATCHING, set())
    if watching:
        watching.intersection_update(still_live(watching, _states(watching)))
    every = keepalive_interval(watching, st.session_state.get(_ON_SCREEN, {}), _idle_seconds())
    if every is not None:
        with st.sidebar:
            _every(_keep_alive_round, every)(every)


# --------------------------------------------------------------------------------------------
# The run panel
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewStyle:
    """How a page wants its run drawn: ``table`` rewrites the run table (e.g. money as money, from
    dnn2core), ``curves`` holds keyword arguments of ``plots.training_curves_figure`` per metric."""

    table: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    continues: Callable[[list[str]], Mapping[str, str]] | None = None  # model names -> {model: the model
    # whose training it continues}, e.g. fine-tuning after the frozen head: its curve carries on from there


PLAIN = ViewStyle()


def eta_words(snap) -> str:
    """The ETA of the step in progress, from its own speed; later models are counted, not guessed."""
    eta = f"ETA {format_eta(snap.eta_seconds)}"
    if snap.steps_after:
        return f"{eta} for this step, then {snap.steps_after} more model{'s' if snap.steps_after > 1 else ''}"
    return eta


def _status_line(snap, record: RunRecord, gate: JobGate, watchers: int) -> str:
    watching = f" · 👀 {watchers} learners watching" if watchers > 1 else ""
    if record.reference:
        return f"📘 The course's full run, trained on {record.device or 'an unknown device'}."
    if snap.state == "queued":
        pos = snap.queue_position or 1
        if ray_address() is not None:  # the queue is the cluster's, across every web replica
            return f"⏳ Waiting for the training cluster: **position {pos}** in its queue{watching}."
        return (f"⏳ Waiting for a free training slot: **position {pos}** in the queue "
                f"({len(gate.running())} of {gate.max_running} slot(s) busy server-wide){watching}.")
    if snap.state == "running":
        mp = snap.models.get(snap.current) if snap.current else None
        if mp is None:
            return (f"Saving the run…{watching}" if any(m.epoch for m in snap.models.values())
                    else f"🚀 Starting the training process…{watching}")
        times = f"elapsed {format_eta(snap.elapsed)} · {eta_words(snap)}{watching}"
        if mp.phase:  # work before the fit, e.g. "extracting features: image 320/2,000"
            count = f": {mp.phase_unit} {mp.phase_done:,}/{mp.phase_total:,}" if mp.phase_total else "…"
            return f"🏃 **{mp.name}** · {mp.phase}{count} · {times}"
        steps = f"/{mp.steps}" if mp.steps else ""
        phase = " · validating…" if mp.validating else ""
        if mp.unit != "epoch":  # a task, e.g. a batch of attacks: "image 3/10"
            return f"🏃 **{mp.name}** · {mp.unit} {min(mp.epoch + 1, max(mp.epochs, 1))}/{mp.epochs} · {times}"
        return (f"🏃 **{mp.name}** · epoch {min(mp.epoch + 1, mp.epochs)}/{mp.epochs} · batch {mp.batch}{steps}"
                f"{phase} · {times}")
    when = time.strftime("%d %b %H:%M", time.localtime(record.finished_at)) if record.finished_at else ""
    if snap.state == "done":
        return f"✅ Finished in {format_eta(snap.elapsed)} ({when}; stored, shared with anyone who opens these settings)."
    if snap.state == "stopped":
        return f"⏹ Stopped ({snap.stop_reason}) after {format_eta(snap.elapsed)}; the history so far is kept."
    if snap.state == "interrupted":
        return f"⚠️ Interrupted: {record.message}"
    return f"❌ Failed: {snap.message}"


def _only_tasks(snap) -> bool:
    """A job of tasks (fitting the classical models, a batch of attacks): no epochs, batches or weights."""
    return all(mp.unit != "epoch" for mp in snap.models.values())


def _speed_table(snap) -> pd.DataFrame:
    rows = []
    for mp in snap.models.values():
        secs = mp.epoch_seconds
        if mp.unit != "epoch":
            row = {"model": mp.name, "state": mp.state, "done": f"{mp.epoch}/{mp.epochs} {mp.unit}s"}
        else:
            row = {"model": mp.name, "state": mp.state, "epochs": f"{mp.epoch}/{mp.epochs}",
                   "params": mp.params or None, "s/epoch": round(sum(secs) / len(secs), 2) if secs else None}
        for key, value in mp.history.items():
            if value:
                row[key] = value[-1]
        for key, value in mp.results.items():
            if isinstance(value, (int, float)):
                row[key] = value
        if mp.batch_logs and mp.state == "running":
            row.update({f"running {k}": v for k, v in mp.batch_logs.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _curves(v: RunView, reference: RunView | None) -> pd.DataFrame:
    history = v.history_frame()
    if reference is not None and reference.key != v.key:
        ref = reference.history_frame()
        if len(ref):
            ref["model"] = "Course full run · " + ref["model"]
            history = pd.concat([history, ref], ignore_index=True)
    return history


def _draw(v: RunView, page: str, metrics: Sequence[str], live: bool, reference: RunView | None,
          style: ViewStyle = PLAIN) -> None:
    snap = v.snapshot()
    reg = registry()
    watchers = reg.store.watchers(v.key) if live else 0
    head, stop_col = st.columns([5, 1])
    head.markdown(f"**{snap.label}** — " + _status_line(snap, v.record, reg.gate, watchers))
    if live and not snap.done:
        if _may_stop(page, v.key, watchers):
            _stop_button(stop_col, page, v.key)
        else:
            stop_col.caption("Started by another learner: it trains while anyone watches.")
    st.progress(min(max(snap.fraction if not v.done else 1.0, 0.0), 1.0))
    if snap.device:
        st.caption(f"Device: {snap.device}." + ("" if _only_tasks(snap) else
                                                " Batch values are running means over the current epoch."))
    table = _speed_table(snap)
    st.dataframe(style.table(table) if style.table is not None else table, hide_index=True,
                 key=f"{page}.speed.{v.key}.{live}")
    history = _curves(v, reference) if metrics else pd.DataFrame()
    if len(history) and style.continues is not None:
        history = continue_epochs(history, style.continues(list(history["model"].unique())))
    if len(history):
        if reference is not None and reference.key != v.key:
            st.caption(f"Curves named *Course full run* are the course's full-length run "
                       f"({reference_words(reference.record)}), drawn beside this one.")
        cols = st.columns(len(metrics))
        for col, metric in zip(cols, metrics):
            col.plotly_chart(_curve_figure(history, metric, tuple(sorted(style.curves.get(metric, {}).items()))),
                             key=f"{page}.curve.{metric}.{live}")


@st.cache_resource(show_spinner=False, max_entries=128)
def _curve_figure(history: pd.DataFrame, metric: str, options: tuple[tuple[str, Any], ...]):
    """A learning-curve figure, built once per curves and shared: a live view polls every second for
    each learner who watches it, but its curves change once an epoch, and building the figure was
    most of the web process's work per poll (py-spy: 939 of 1,412 samples in ``_draw``). Read-only:
    ``st.plotly_chart`` only reads it, and the presenter view draws a copy."""
    return plots.training_curves_figure(history, metric, **dict(options))


def reference_summary(reference: RunView, metric: str) -> str:
    """"Dense 96.89%, CNN 99.04% (trained on CPU: 2 cores, 2026-11-29)" for a reference run."""
    values = [f"{name} {row[metric]:.2%}" for name, row in reference.record.metrics.items()
              if isinstance(row, dict) and isinstance(row.get(metric), (int, float))]
    return ", ".join(values) + f" ({reference_words(reference.record)})"


def reference_words(record: RunRecord) -> str:
    prov = record.provenance or {}
    bits = [f"trained on {record.device or prov.get('device', 'unknown device')}"]
    if prov.get("date"):
        bits.append(prov["date"])
    if prov.get("data"):
        bits.append(str(prov["data"]))
    return ", ".join(bits)


def _may_stop(page: str, key: str, watchers: int) -> bool:
    """Only the learner who started a shared run may stop it (anyone may, when nobody else watches)."""
    return key in own_keys(page) or watchers <= 1


def _stop_run(key: str) -> None:
    registry().stop(key)


def _stop_button(where, page: str, key: str) -> None:
    """Stop, as a callback: it acts before the next run, whatever that run draws. (Read as the
    button's return value, a click on the queue view's Stop was lost when the run had just been
    admitted: the view switched over without looking at it.)"""
    where.button("Stop", key=f"{page}.stop.{key}", type="primary", on_click=_stop_run, args=(key,))


def _poll(page: str, key: str, metrics: tuple[str, ...], reference_key: str | None, queued: float | None,
          style: ViewStyle = PLAIN) -> None:
    """One poll of a run's view; ``queued`` is the interval a queued view was drawn to poll at."""
    v = view(key)
    if v is None:
        st.rerun()
        return
    _watch(key)
    if queued is not None:
        snap = v.snapshot()
        if snap.state != "queued":
            st.rerun()  # admitted: one full rerun switches to the once-a-second view
            return
        if queued_poll_interval(snap.queue_position, _idle_seconds()) != queued:
            st.rerun()  # first in line now: one full rerun polls every QUEUED_POLL_S from here
            return
        # Waiting costs the server almost nothing: a status line and a progress bar, no charts.
        reg = registry()
        watchers = reg.store.watchers(key)
        head, stop_col = st.columns([5, 1])
        head.markdown(f"**{snap.label}** — " + _status_line(snap, v.record, reg.gate, watchers))
        if _may_stop(page, key, watchers):
            _stop_button(stop_col, page, key)
        st.progress(0.0)
        return
    reference = view(reference_key) if reference_key else None
    _draw(v, page, metrics, live=True, reference=reference, style=style)
    if v.done:
        st.rerun()  # one full rerun: the page shows results and this fragment stops polling


@st.fragment(run_every=1.0)
def _live_fragment(page: str, key: str, metrics: tuple[str, ...], reference_key: str | None,
                   style: ViewStyle = PLAIN) -> None:
    _poll(page, key, metrics, reference_key, queued=None, style=style)


def _queued_view(page: str, key: str, metrics: tuple[str, ...], reference_key: str | None,
                 style: ViewStyle, every: float) -> None:
    _poll(page, key, metrics, reference_key, queued=every, style=style)


def start(page: str, spec: RunSpec, make_runs: Callable[[], list[ModelRun]], *, budget: Budget, seed: int,
          label: str, replace: bool = False) -> RunView | None:
    """Train ``spec`` (or attach to it when it is live or stored); None with a message when refused."""
    reg = registry()
    if trainings_paused(reg.store):
        existing = reg.store.get(spec.key)
        if existing is None or not existing.live:  # watching a run that trains already stays allowed
            st.error("⏸ Not started: " + classroom.PAUSED_WORDS)
            return None
    try:
        v, _ = reg.start(spec, make_runs, budget=budget, seed=seed, label=label, session=session_id(),
                         replace=replace)
    except (QueueFull, LearnerLimit) as exc:
        st.error(str(exc))
        return None
    except StoreError as exc:
        st.error(f"The run could not be recorded: {exc}")
        return None
    except ValueError as exc:  # the data could not be prepared (UploadError too): the page's words
        st.error(str(exc))
        return None
    _remember(page, v.key)
    if v.record.live:
        _watch(v.key)
    return v


SHARED_SESSION = "server"  # the owner of runs a page needs for everyone (a default model), not a learner's


def shared_run(spec: RunSpec, make_runs: Callable[[], Any], *, budget: Budget, label: str,
               timeout: float = 900.0) -> RunView | None:
    """A run every learner needs (Inside the network's default CNN): trained once for the server by a
    worker, in the queue like any run, while this page waits under a spinner; read from the store ever
    after, by every session and after a restart. None, with the reason on the page, when it cannot
    train now (trainings paused, the queue full, a failure)."""
    reg = registry()
    record = reg.store.get(spec.key)
    if record is None or record.state != "done":
        if trainings_paused(reg.store) and (record is None or not record.live):
            st.error("⏸ Not trained: " + classroom.PAUSED_WORDS)
            return None
        try:
            reg.start(spec, make_runs, budget=budget, seed=0, label=label, session=SHARED_SESSION,
                      replace=record is not None and record.finished)
        except (QueueFull, LearnerLimit, StoreError, ValueError) as exc:
            st.error(str(exc))
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = reg.store.get(spec.key)
            if record is None or record.finished:
                break
            store().watch(spec.key, session_id())  # a waiting page is a watcher: the run is not abandoned
            time.sleep(0.5)
    if record is None or record.state != "done":
        st.error(f"{label} did not train: {(record.message if record else None) or 'it was stopped'}.")
        return None
    return reg.view(spec.key)


def run_panel(page: str, spec: RunSpec, make_runs: Callable[[], list[ModelRun]], *, budget: Budget, seed: int,
              label: str, metrics: Sequence[str] = ("loss", "accuracy"), disabled: bool = False,
              reference: RunView | None = None, start_label: str = "Start training",
              seed_key: str | None = None, style: ViewStyle = PLAIN) -> RunView | None:
    """Start button, live view, or the stored run of ``spec``; returns the run shown (or None).

    ``seed_key`` is the page's seed widget key: a finished run offers "train again with a new seed".
    """
    v = view(spec)
    cols = st.columns([3, 7])  # wide enough for the longest start label at 1280 px
    if v is None or v.record.state in ("failed", "interrupted"):
        slot = cols[0].empty()
        clicked = slot.button(start_label, type="primary", key=f"{page}.start", disabled=disabled)
        with cols[1]:
            server_load_caption()
        if clicked:
            v = start(page, spec, make_runs, budget=budget, seed=seed, label=label,
                      replace=v is not None) or v
            if v is not None and v.record.live:
                slot.empty()
    else:
        with cols[1]:
            server_load_caption()
        if v.done and not v.record.reference:
            with cols[0].popover("Train again" if metrics else "Run again"):
                if seed_key is not None:
                    st.button("With a new seed", key=f"{page}.reseed", on_click=_new_seed, args=(seed_key,),
                              help="The same settings with the next seed: a new run beside this one.")
                if st.button("These exact settings", key=f"{page}.retrain",
                             help="Replaces the stored run of these settings for everyone."):
                    v = start(page, spec, make_runs, budget=budget, seed=seed, label=label, replace=True) or v
        elif v.done and v.record.reference and seed_key is not None:
            cols[0].button("Train it yourself (new seed)", key=f"{page}.reseed", on_click=_new_seed, args=(seed_key,))
    if v is None:
        return None
    ref_key = reference.key if reference is not None else None
    if v.done:
        _draw(v, page, metrics, live=False, reference=reference, style=style)
    elif _state_once_admitted(v, registry().gate) == "queued":
        _on_screen(v.key, "queued")
        every = queued_poll_interval(v.snapshot().queue_position, _idle_seconds())
        _every(_queued_view, every)(page, v.key, tuple(metrics), ref_key, style, every)
    else:
        _on_screen(v.key, "running")
        _live_fragment(page, v.key, tuple(metrics), ref_key, style)
    return v


def _state_once_admitted(v: RunView, gate: JobGate, wait_s: float = 0.5) -> str:
    """The run's state, after waiting (at most ``wait_s``) for a job that a free slot is about to
    admit: pressed on a quiet server it trains within milliseconds, so it is drawn live at once
    instead of "waiting" until the queue view's next poll."""
    state = v.snapshot().state
    if ray_address() is not None:  # the cluster's queue, not this process's gate, admits it
        return state
    deadline = time.monotonic() + wait_s
    while state == "queued" and len(gate.running()) < gate.max_running and time.monotonic() < deadline:
        time.sleep(0.02)
        state = v.snapshot().state
    return state


def _new_seed(seed_key: str) -> None:
    st.session_state[seed_key] = int(st.session_state.get(seed_key, 0)) + 1


def results_footer(page: str, v: RunView | None, metric: str, *, experiment: str | None = None,
                   axes: Sequence[str] = (), open_settings: Callable[[dict], None] | None = None,
                   part: str | None = None) -> None:
    """Below the run panel: the shown run's downloads, this learner's other runs (one click puts
    their settings back), and the class's runs of this experiment."""
    if v is not None and v.done:
        download_buttons(page, v)
    experiment = experiment or page.split(".")[0]
    others = [o for o in (view(k) for k in reversed(own_keys(page))) if o is not None and (v is None or o.key != v.key)]
    if others and open_settings is not None:
        st.markdown("**Your other runs here** (kept in the run store; open one to see it again):")
        for o in others[:5]:
            c1, c2 = st.columns([4, 1])
            c1.caption(f"{o.snapshot().label} — {o.record.state}")
            c2.button("Open", key=f"{page}.open.{o.key}", on_click=open_settings, args=(dict(o.settings),))
    class_results(page, experiment, metric, axes=axes, part=part, open_settings=open_settings)


# --------------------------------------------------------------------------------------------
# Class results and comparison (from the store: anonymous, survives a refresh)
# --------------------------------------------------------------------------------------------


def _metric_value(record: RunRecord, metric: str) -> float | None:
    """The best model's value of a metric (e.g. test_accuracy) in a finished run's summary."""
    values = [row.get(metric) for row in record.metrics.values() if isinstance(row, dict)]
    values = [float(x) for x in values if isinstance(x, (int, float))]
    if not values:
        return None
    return min(values) if any(w in metric for w in ("loss", "mae", "mse")) else max(values)


def class_frame(experiment: str, metric: str, *, mine: Sequence[str] = (), part: str | None = None) -> pd.DataFrame:
    """This server's finished runs of an experiment: shared ones and this learner's private ones."""
    rows = []
    for rec in store().runs(experiment):
        if not rec.finished or rec.state == "interrupted":
            continue
        if rec.private and rec.key not in mine:
            continue
        if part is not None and rec.settings.get("part") != part:
            continue
        row = {"run": rec.key[:8], "yours": "★" if rec.key in mine else ("course" if rec.reference else ""),
               "state": rec.state, metric: _metric_value(rec, metric), "device": rec.device,
               "finished": time.strftime("%d %b %H:%M", time.localtime(rec.finished_at)) if rec.finished_at else ""}
        row.update({f"· {k}": (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in rec.settings.items()})
        row["_key"] = rec.key
        rows.append(row)
    return pd.DataFrame(rows)


def class_results(page: str, experiment: str, metric: str, *, axes: Sequence[str] = (), part: str | None = None,
                  open_settings: Callable[[dict], None] | None = None) -> None:
    """The class's finished runs of this experiment: table, a setting against the metric, and
    the chosen runs' curves overlaid. Anonymous; this learner's own runs are starred."""
    st.subheader("Class results")
    frame = class_frame(experiment, metric, mine=own_keys(), part=part)
    if frame.empty:
        st.caption("No finished runs of this experiment on this server yet.")
        return
    shown = frame.drop(columns=["_key"])
    st.dataframe(shown, hide_index=True, key=f"{page}.class.table")
    settings_cols = [c[2:] for c in frame.columns if c.startswith("· ")]
    options = [a for a in axes if a in settings_cols] or settings_cols
    if options and frame[metric].notna().any():
        axis = st.selectbox("Setting on the x axis", options, key=f"{page}.class.axis")
        fig = plots.scatter_figure(frame[f"· {axis}"].astype(str).tolist(), frame[metric].tolist(),
                                   labels=frame["run"].tolist(), title=f"{metric} by {axis} ({len(frame)} runs)",
                                   x_title=axis, y_title=metric)
        st.plotly_chart(fig, key=f"{page}.class.scatter")
    labels = {row["run"] + (" ★" if row["yours"] == "★" else "") + (" (course)" if row["yours"] == "course" else ""):
              row["_key"] for _, row in frame.iterrows()}
    chosen = st.multiselect("Compare runs (curves overlaid)", list(labels), default=list(labels)[:2],
                            key=f"{page}.class.compare")
    frames = []
    for label in chosen:
        v = view(labels[label])
        if v is None:
            continue
        h = v.history_frame()
        h["model"] = label + " · " + h["model"]
        frames.append(h)
    if frames:
        merged = pd.concat(frames, ignore_index=True)
        st.plotly_chart(plots.training_curves_figure(merged, metric.removeprefix("val_").removeprefix("test_"),
                                                     title="Runs compared"), key=f"{page}.class.compare_fig")
    if open_settings is not None:
        c1, c2 = st.columns([3, 1])
        pick = c1.selectbox("Open a run of the class (puts its settings on this page)", list(labels),
                            key=f"{page}.class.open_pick")
        if pick is not None:
            rec = store().get(labels[pick])
            if rec is not None:
                c2.button("Open", key=f"{page}.class.open", on_click=open_settings, args=(dict(rec.settings),))


def finished_models(page: str, limit: int = 5) -> list[RunView]:
    """This learner's finished runs of a page that kept trained models, newest first (for pages
    that inspect models, e.g. Inside the network). Models load from the store on first use."""
    out = []
    for key in reversed(own_keys(page)):
        v = view(key)
        if v is not None and v.done and v.model_names:
            out.append(v)
        if len(out) >= limit:
            break
    return out


def reference_run(experiment: str, **match) -> RunView | None:
    """The course's reference run of an experiment whose settings include ``match``."""
    for rec in store().runs(experiment):
        if rec.reference and all(rec.settings.get(k) == v for k, v in match.items()):
            return view(rec.key)
    return None


# --------------------------------------------------------------------------------------------
# Downloads and the server's load
# --------------------------------------------------------------------------------------------


def _model_bytes(folder: str, name: str) -> bytes:
    from dnn2core.runs import _safe_name

    return (Path(folder) / f"{_safe_name(name)}.keras").read_bytes()


def download_buttons(page: str, v: RunView) -> None:
    """History as CSV and each stored model as .keras (read from the store only when clicked)."""
    if not v.done:
        return
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(v.record.created_at or time.time()))
    names = v.model_names
    cols = st.columns(1 + len(names))
    cols[0].download_button("History (CSV)", v.history_frame().to_csv(index=False),
                            file_name=f"{page}-history-{stamp}.csv", mime="text/csv",
                            key=f"{page}.dl.csv.{v.key}", on_click="ignore")
    for col, name in zip(cols[1:], names):
        col.download_button(f"{name} model (.keras)", lambda n=name, folder=v.record.path: _model_bytes(folder, n),
                            file_name=f"{page}-{name.lower().replace(' ', '_')}-{stamp}.keras",
                            key=f"{page}.dl.model.{name}.{v.key}", on_click="ignore")


def server_load_caption() -> None:
    gate = shared_gate()
    paused = " New trainings are paused by the instructor." if trainings_paused(store()) else ""
    st.caption(f"Server: {len(gate.running())} of {gate.max_running} training slot(s) busy, "
               f"{len(gate.waiting())} waiting.{paused}")


def trainings_paused(run_store: RunStore) -> bool:
    """The instructor paused new trainings (a flag in the store: every server process sees it)."""
    try:
        return classroom.paused(run_store) is not None
    except StoreError:
        return False
