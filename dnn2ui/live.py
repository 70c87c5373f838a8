"""Live training on the page: start a job, watch it, stop it, compare and download runs.

The job itself (``dnn2core.training.TrainingJob``) trains in a worker thread that makes no
Streamlit calls. Here a fragment polls its plain progress once a second and redraws; a
Stop click reruns only the fragment; a finished job triggers one full rerun so the page
can show results. Jobs live in this learner's ``st.session_state`` only.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import uuid
from typing import Sequence

import pandas as pd
import streamlit as st

from dnn2core import plots
from dnn2core.training import Budget, JobGate, ModelRun, QueueFull, TrainingJob, default_max_jobs, format_eta

MAX_JOBS_PER_PAGE = 6  # older finished runs are dropped so one learner cannot fill the server's memory


@st.cache_resource(show_spinner=False)
def shared_gate() -> JobGate:
    """One gate per server process: at most N jobs train at once, the rest queue in order."""
    return JobGate(default_max_jobs(), max_waiting=int(os.environ.get("DNN2_MAX_WAITING", "50")))


def _owner() -> str:
    return st.session_state.setdefault("_owner", uuid.uuid4().hex[:12])


def page_jobs(page: str) -> list[TrainingJob]:
    return st.session_state.setdefault(f"{page}.jobs", [])


def latest_job(page: str) -> TrainingJob | None:
    jobs = page_jobs(page)
    return jobs[-1] if jobs else None


def any_active(page: str) -> bool:
    return any(not j.done for j in page_jobs(page))


def start_job(page: str, runs: list[ModelRun], *, budget: Budget, seed: int, label: str) -> TrainingJob | None:
    """Queue a training job for this learner; returns None (with a message) when the server is full."""
    jobs = page_jobs(page)
    job = TrainingJob(runs, gate=shared_gate(), budget=budget, seed=seed, owner=_owner(),
                      label=f"Run {len(jobs) + 1}: {label}" if label else f"Run {len(jobs) + 1}")
    try:
        job.start()
    except QueueFull as exc:
        st.error(f"The server is busy: {exc} Try again in a minute.")
        return None
    jobs.append(job)
    while len(jobs) > MAX_JOBS_PER_PAGE:
        old = next((j for j in jobs if j.done), None)
        if old is None:
            break
        jobs.remove(old)
    return job


def start_button(page: str, *, disabled: bool = False, label: str = "Start training") -> bool:
    """The page's Start button (off while this learner's run is active) beside the server's load."""
    cols = st.columns([1, 4])
    clicked = cols[0].button(label, type="primary", key=f"{page}.start", disabled=disabled or any_active(page))
    with cols[1]:
        server_load_caption()
    return clicked


def finished_footer(page: str, job: TrainingJob, compare_metric: str) -> None:
    """Below a finished run: its downloads, then this learner's runs compared."""
    download_buttons(page, job)
    st.subheader("Compare runs")
    compare_runs(page, compare_metric)


def _status_line(snap, gate: JobGate) -> str:
    if snap.state == "queued":
        pos = snap.queue_position or 1
        return (f"⏳ Waiting for a free training slot: **position {pos}** in the queue "
                f"({len(gate.running())} of {gate.max_running} slot(s) busy server-wide).")
    if snap.state == "running":
        mp = snap.models.get(snap.current) if snap.current else None
        if mp is None:
            return "Starting…"
        steps = f"/{mp.steps}" if mp.steps else ""
        phase = " · validating…" if mp.validating else ""
        return (f"🏃 **{mp.name}** · epoch {min(mp.epoch + 1, mp.epochs)}/{mp.epochs} · batch {mp.batch}{steps}"
                f"{phase} · elapsed {format_eta(snap.elapsed)} · ETA {format_eta(snap.eta_seconds)}")
    if snap.state == "done":
        return f"✅ Finished in {format_eta(snap.elapsed)}."
    if snap.state == "stopped":
        return f"⏹ Stopped ({snap.stop_reason}) after {format_eta(snap.elapsed)}; the history so far is kept."
    return f"❌ Failed: {snap.message}"


def _speed_table(snap) -> pd.DataFrame:
    rows = []
    for mp in snap.models.values():
        secs = mp.epoch_seconds
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


def _draw(job: TrainingJob, page: str, metrics: Sequence[str], live: bool) -> None:
    snap = job.snapshot()
    gate = shared_gate()
    head, stop_col = st.columns([5, 1])
    head.markdown(f"**{snap.label}** — " + _status_line(snap, gate))
    if live and not snap.done:
        if stop_col.button("Stop", key=f"{page}.stop.{job.job_id}", type="primary"):
            job.stop()
            snap = job.snapshot()
    st.progress(min(max(snap.fraction, 0.0), 1.0))
    if snap.device:
        st.caption(f"Device: {snap.device}. Batch values are running means over the current epoch.")
    st.dataframe(_speed_table(snap), hide_index=True, key=f"{page}.speed.{job.job_id}.{live}")
    history = job.history_frame()
    if len(history):
        cols = st.columns(len(metrics))
        for col, metric in zip(cols, metrics):
            col.plotly_chart(plots.training_curves_figure(history, metric), key=f"{page}.curve.{metric}.{live}")


@st.fragment(run_every=1.0)
def _live_fragment(page: str, metrics: tuple[str, ...]) -> None:
    job = latest_job(page)
    if job is None:
        return
    job.heartbeat()
    _draw(job, page, metrics, live=True)
    if job.done:
        st.rerun()  # one full rerun: the page shows results and this fragment stops polling


def job_panel(page: str, metrics: tuple[str, ...] = ("loss", "accuracy")) -> TrainingJob | None:
    """The latest job of this page: live while it runs, static once finished."""
    job = latest_job(page)
    if job is None:
        return None
    if job.done:
        _draw(job, page, metrics, live=False)
    else:
        _live_fragment(page, tuple(metrics))
    return job


def compare_runs(page: str, metric: str) -> None:
    """This learner's finished runs of the page side by side: a table and overlaid curves."""
    jobs = [j for j in page_jobs(page) if j.done]
    if len(jobs) < 2:
        st.caption("Train again with other settings to compare runs here.")
        return
    labels = [j.snapshot().label for j in jobs]
    chosen = st.multiselect("Runs to compare", labels, default=labels[-2:], key=f"{page}.compare")
    frames = []
    for job, label in zip(jobs, labels):
        if label in chosen:
            h = job.history_frame()
            h["model"] = label.split(":")[0] + " · " + h["model"]
            frames.append(h)
    if frames:
        merged = pd.concat(frames, ignore_index=True)
        st.plotly_chart(plots.training_curves_figure(merged, metric, title=f"{metric}: runs compared"),
                        key=f"{page}.compare_fig")


def _keras_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def download_buttons(page: str, job: TrainingJob) -> None:
    """History as CSV and each trained model as .keras (built only when clicked)."""
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(job.snapshot().created_at))
    cols = st.columns(1 + len(job.models))
    csv = job.history_frame().to_csv(index=False)
    cols[0].download_button("History (CSV)", csv, file_name=f"{page}-history-{stamp}.csv", mime="text/csv",
                            key=f"{page}.dl.csv.{job.job_id}", on_click="ignore")
    for col, (name, model) in zip(cols[1:], job.models.items()):
        col.download_button(f"{name} model (.keras)", lambda m=model: _keras_bytes(m),
                            file_name=f"{page}-{name.lower().replace(' ', '_')}-{stamp}.keras",
                            key=f"{page}.dl.model.{name}.{job.job_id}", on_click="ignore")


def server_load_caption() -> None:
    gate = shared_gate()
    st.caption(f"Server: {len(gate.running())} of {gate.max_running} training slot(s) busy, "
               f"{len(gate.waiting())} waiting.")
