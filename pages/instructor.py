"""Instructor: the class control panel. In the navigation only when the server has DNN2_INSTRUCTOR_KEY,
and empty until this session has entered that key (a wrong one is rate-limited)."""

import time

import pandas as pd
import streamlit as st

from dnn2core import check, classroom
from dnn2core.training import format_eta
from dnn2ui import classroom_ui, live
from dnn2ui.pages import PAGES, by_url_path
from dnn2ui.router import ensure_navigation
from dnn2ui.state import page_link

ensure_navigation()
st.title("Instructor")

if not classroom.instructor_key():
    st.info("The instructor page is off: start the server with DNN2_INSTRUCTOR_KEY set to a key of your choice.")
    st.stop()

if not classroom_ui.unlocked():
    entered = st.text_input("Instructor key", type="password", key="instructor.key")
    attempt = classroom_ui.try_key(entered, live.session_id())
    if attempt is not None and attempt.ok:
        st.rerun()
    if attempt is not None:
        st.error(attempt.message)
    st.stop()

reg = live.registry()
gate = live.shared_gate()


# ----------------------------------------------------------------------------- jobs
@st.fragment(run_every=3.0)
def jobs_panel() -> None:
    """Every run training or waiting on this server, refreshed every 3 s, each with Stop."""
    rows = classroom.live_jobs(reg.store, gate)
    st.caption(f"{len(gate.running())} of {gate.max_running} training slot(s) busy, {len(gate.waiting())} waiting "
               f"(this server process) · {time.strftime('%H:%M:%S')}")
    if not rows:
        st.caption("No run is training or waiting.")
        return
    st.dataframe(pd.DataFrame([{
        "run": r.key[:8], "experiment": r.experiment, "state": r.state,
        "queue position": r.position, "elapsed": format_eta(r.elapsed_s), "device": r.device or "—",
        "settings": r.settings + (" (private: uploaded data)" if r.private else ""),
    } for r in rows]), hide_index=True, key="instructor.jobs")
    cols = st.columns(min(len(rows), 6))
    for i, r in enumerate(rows):
        if cols[i % len(cols)].button(f"Stop {r.key[:8]}", key=f"instructor.stop.{r.key}",
                                      help=f"{r.experiment}: {r.label or r.settings}"):
            reg.stop(r.key)
            st.toast(f"Stop sent to run {r.key[:8]} ({r.experiment}): it ends within one batch.")


st.subheader("Runs training and waiting")
jobs_panel()


# ----------------------------------------------------------------------------- trainings
def _pause_changed() -> None:
    classroom.set_paused(reg.store, bool(st.session_state["instructor.pause"]))


def _slots_changed() -> None:
    gate.set_max_running(int(st.session_state["instructor.slots"]))


st.subheader("New trainings")
c1, c2 = st.columns(2)
st.session_state["instructor.pause"] = classroom.paused(reg.store) is not None
c1.toggle("Pause new trainings", key="instructor.pause", on_change=_pause_changed,
          help="Learners see a banner and Start is refused; runs already training or waiting carry on.")
if st.session_state["instructor.pause"]:
    c1.warning("Paused: learners cannot start runs. Finished runs can still be opened.")
st.session_state["instructor.slots"] = gate.max_running
c2.number_input("Training slots (runs at once)", min_value=1, max_value=64, step=1, key="instructor.slots",
                on_change=_slots_changed,
                help="More slots train more runs at once, each slower; on a CPU one slot per 2-4 cores is sensible.")
c2.caption(f"This server process; set DNN2_MAX_JOBS to make it the default (now {gate.max_running}). A slot beyond "
           "the warm training workers starts a new worker (about 10 s).")


# ----------------------------------------------------------------------------- load
@st.fragment(run_every=5.0)
def load_panel() -> None:
    pids = reg.pool.pids() if reg.pool is not None else []
    for line in classroom.usage_lines(classroom.usage(classroom_ui.cpu_meter(), pids)):
        st.markdown(f"- {line}")


st.subheader("Server load")
load_panel()


# ----------------------------------------------------------------------------- push a link
st.subheader("Push a link to the class")
pages = {p.url_path: p for p in PAGES}
chosen = st.selectbox("Page", list(pages), format_func=lambda k: pages[k].title, key="instructor.push_page")
link_text = st.text_input(
    "Its link (your own settings on that page; or paste any link from the address bar)",
    value=page_link(pages[chosen].prefix, chosen), key=f"instructor.push_link.{chosen}")
if st.button("Push to the class", key="instructor.push", type="primary"):
    try:
        classroom.push(reg.store, classroom.parse_link(link_text, set(by_url_path())))
    except ValueError as exc:
        st.error(str(exc))
current = classroom.current_push(reg.store, set(by_url_path()))
if current is None:
    st.caption("Nothing pushed. A pushed link shows learners a banner with an Open button, and this panel shows a "
               "short URL and a QR code for the board.")
else:
    url = classroom.short_url(getattr(st.context, "url", "") or "", current.id)
    q1, q2 = st.columns([1, 2])
    png = classroom.qr_png(url)
    if png is not None:
        q1.image(png, caption="Scan to open", width=240)
    else:
        q1.caption("Install the qrcode package for a QR code.")
    q2.markdown(f"**{by_url_path()[current.page].title}** is pushed. Short URL:")
    q2.code(url, language=None)
    q2.caption(f"Opens {current.relative or '/'}")
    if any(h in url for h in ("//localhost", "//127.0.0.1", "//[::1]")):
        q2.warning("This address only works on this computer: open the instructor page at the address learners "
                   "use (the server's name or IP) and the short URL and QR code follow it.")
    q2.button("Stop showing the banner", key="instructor.unpush", on_click=classroom.stop_push, args=(reg.store,))


# ----------------------------------------------------------------------------- pre-class check
st.subheader("Pre-class check")
st.caption("What this server has and lacks for each page (the same as `make check`). Reads files only; tries the "
           "download sites for a few seconds unless DNN2_OFFLINE=1; loads TensorFlow for its build.")
if st.button("Run the check", key="instructor.check"):
    with st.spinner("Checking…"):
        st.session_state["_instructor.check"] = check.run_checks(tensorflow=True)
findings = st.session_state.get("_instructor.check")
if findings:
    missing = [f for f in findings if not f.ok]
    (st.warning if missing else st.success)(
        f"{len(missing)} item(s) missing, stand-ins or low." if missing else "Everything is here.")
    st.dataframe(pd.DataFrame([{"page": f.page, "item": f.item, "status": f.status, "in plain words": f.words}
                               for f in findings]), hide_index=True, key="instructor.check_table")

st.divider()
st.button("Lock this page", key="instructor.lock", on_click=classroom_ui.lock,
          help="Forget the key in this tab (before projecting it, or leaving the room).")
