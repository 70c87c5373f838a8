"""The instructor's controls without Streamlit: the rate-limited key, flags shared through the run
store, live slot changes, pushed links, the job list and the machine's load."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from conftest import ROOT

from dnn2core import classroom
from dnn2core.runs import RunStore
from dnn2core.training import JobGate

PAGES = {"", "mnist", "cats_dogs", "convolution"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_wrong_key_locks_the_session_for_twice_as_long_each_time():
    clock = Clock()
    guard = classroom.KeyGuard("s3cret", session_base=5, server_free=100, clock=clock)
    first = guard.attempt("a", "guess")
    assert (first.ok, first.checked, first.wait_s) == (False, True, 5.0)
    assert first.message == "Wrong key. Wait 5 s before the next try."
    # while locked, even the right key is refused without being compared
    early = guard.attempt("a", "s3cret")
    assert (early.ok, early.checked) == (False, False) and early.wait_s == 5.0
    assert "not checked" in early.message
    clock.t += 5
    assert guard.attempt("a", "guess2").wait_s == 10.0
    clock.t += 10
    assert guard.attempt("a", "guess3").wait_s == 20.0
    assert guard.wait_s("b") == 0.0  # another session is not locked by this one (server limit not reached)
    clock.t += 20
    assert guard.attempt("a", "s3cret").ok
    clock.t += 1
    assert guard.attempt("a", "again").wait_s == 5.0  # the right key reset the count


def test_the_server_wide_limit_catches_guesses_from_many_sessions():
    clock = Clock()
    guard = classroom.KeyGuard("k", session_base=5, server_free=3, server_base=2, cap=300, clock=clock)
    waits = [guard.attempt(f"tab{i}", "x").wait_s for i in range(3)]
    assert waits == [5.0, 5.0, 5.0]  # three fresh tabs: only their own lock
    assert guard.wait_s("fresh") == 0.0
    assert guard.attempt("tab3", "x").wait_s == 5.0  # 4th in a row: server lock 2 s (< the session's 5)
    assert guard.wait_s("fresh") == 2.0  # every session waits now, even one that never tried
    clock.t += 2
    guard.attempt("tab4", "x")
    assert guard.wait_s("fresh") == 4.0
    clock.t += 4
    guard.attempt("tab5", "x")
    assert guard.wait_s("fresh") == 8.0
    clock.t += 8 + 900 + 1  # a quiet quarter of an hour forgets the server's count
    assert guard.attempt("tab6", "x").wait_s == 5.0 and guard.wait_s("fresh") == 0.0


def test_the_lock_is_capped():
    clock = Clock()
    guard = classroom.KeyGuard("k", session_base=5, server_free=1000, cap=60, clock=clock)
    waits = []
    for _ in range(8):
        waits.append(guard.attempt("a", "x").wait_s)
        clock.t += waits[-1]
    assert waits == [5, 10, 20, 40, 60, 60, 60, 60]


def test_flags_are_shared_by_two_stores_on_one_folder(tmp_path):
    a, b = RunStore(tmp_path), RunStore(tmp_path)  # two server processes on one store
    assert a.get_flag("x") is None and a.get_flag("x", "d") == "d"
    a.set_flag("x", "1")
    assert b.get_flag("x") == "1"
    b.set_flag("x", "2")
    assert a.get_flag("x") == "2"
    a.set_flag("x", None)
    assert b.get_flag("x") is None
    assert classroom.paused(b) is None
    classroom.set_paused(a, True)
    since = classroom.paused(b)
    assert since is not None and abs(since - time.time()) < 5
    classroom.set_paused(b, False)
    assert classroom.paused(a) is None


def test_fewer_or_more_slots_change_the_gate_live():
    gate = JobGate(1)
    stop = threading.Event()
    assert gate.acquire("a", stop)
    admitted = []
    t = threading.Thread(target=lambda: admitted.append(gate.acquire("b", stop, poll=5.0)))
    t.start()
    deadline = time.monotonic() + 5
    while gate.position("b") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.waiting() == ["b"]
    started = time.monotonic()
    gate.set_max_running(2)  # wakes the waiter at once, not after its 5 s poll
    t.join(3)
    assert admitted == [True] and time.monotonic() - started < 2
    assert gate.running() == ["a", "b"] and gate.max_running == 2
    gate.set_max_running(1)  # fewer slots: running jobs keep theirs, nobody new gets in
    assert gate.running() == ["a", "b"]
    gate.enqueue("c")
    assert gate.position("c") == 1
    gate.release("a")
    assert gate.position("c") == 1  # still 1 running (b) = 1 slot
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            gate.set_max_running(bad)


def test_a_link_from_the_address_bar_is_checked_and_private_parts_dropped():
    link = classroom.parse_link("http://class.example:8501/mnist?epochs=3&n=500&u=0123456789abcdef&present=1", PAGES)
    assert link.page == "mnist" and link.params == (("epochs", "3"), ("n", "500"))
    assert link.relative == "mnist?epochs=3&n=500"
    assert classroom.parse_link("/mnist?n=500&epochs=3", PAGES).id != link.id  # order is part of the link
    assert classroom.parse_link("mnist?epochs=3&n=500", PAGES).id == link.id
    assert len(link.id) == 8 and int(link.id, 16) >= 0
    assert classroom.parse_link("http://h/", PAGES).page == ""
    assert classroom.parse_link("cats_dogs", PAGES).params == ()
    assert classroom.parse_link("localhost:8501/mnist?epochs=3&n=500", PAGES) == link
    for bad, words in [("", "Paste"), ("/admin?x=1", "No page called 'admin'"), ("javascript:alert(1)", "http"),
                       ("mnist?<b>=1", "never writes"), ("mnist?a=" + "x" * 400, "never writes"),
                       ("mnist?" + "&".join(f"p{i}=1" for i in range(61)), "61 settings"), ("mn\nist?a=1", "not a link")]:
        with pytest.raises(ValueError, match=words):
            classroom.parse_link(bad, PAGES)


def test_a_pushed_link_resolves_by_its_short_id_in_another_process(tmp_path):
    a, b = RunStore(tmp_path), RunStore(tmp_path)
    link = classroom.parse_link("mnist?epochs=3&models=Dense%2CCNN", PAGES)
    short = classroom.push(a, link)
    assert short == link.id
    assert classroom.resolve(b, short, PAGES) == link
    assert classroom.current_push(b, PAGES) == link
    assert classroom.resolve(b, "ffffffff", PAGES) is None  # unknown
    for bad in ("", "ABCDEF12", "1234567", "../../x", None, 5):
        assert classroom.resolve(b, bad, PAGES) is None
    b.set_flag("go:" + short, '{"page": "mnist", "params": [["epochs", "4"]]}')  # tampered: id no longer matches
    assert classroom.resolve(a, short, PAGES) is None
    classroom.push(a, link)
    classroom.stop_push(b)
    assert classroom.current_push(a, PAGES) is None
    assert classroom.resolve(a, short, PAGES) == link  # the short URL keeps working
    assert classroom.short_url("http://10.0.0.5:8501/instructor?x=1", short) == f"http://10.0.0.5:8501/?go={short}"
    assert classroom.short_url("", short) == f"/?go={short}"


def test_the_qr_code_is_a_png():
    png = classroom.qr_png("http://10.0.0.5:8501/?go=0123abcd")
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    import io

    with Image.open(io.BytesIO(png)) as im:
        assert im.size[0] == im.size[1] and im.size[0] >= 200


def test_live_jobs_lists_running_then_the_queue_with_positions_and_elapsed(tmp_path):
    store = RunStore(tmp_path)
    now = time.time()
    store.claim("k_run", "mnist", {"models": ["Dense", "CNN"], "epochs": 20, "lr": 0.001}, owner="h:1:a")
    store.beat("k_run", "h:1:a", {"device": "CPU: 2 cores"}, state="running", device="CPU: 2 cores",
               started_at=now - 42)
    store.claim("k_q2", "housing", {"epochs": 100}, owner="h:1:a")
    store.beat("k_q2", "h:1:a", {"queue_position": 2}, state="queued")
    store.claim("k_q1", "sequences", {"epochs": 10}, owner="h:1:a")
    store.beat("k_q1", "h:1:a", {"queue_position": 1}, state="queued")
    rows = classroom.live_jobs(store, None, now=now)
    assert [r.key for r in rows] == ["k_run", "k_q1", "k_q2"]
    run = rows[0]
    assert (run.experiment, run.state, run.position, run.device) == ("mnist", "running", None, "CPU: 2 cores")
    assert run.settings == "epochs=20, lr=0.001, models=Dense+CNN"  # the store keeps settings sorted
    assert 41 <= run.elapsed_s <= 43
    assert [(r.state, r.position) for r in rows[1:]] == [("queued", 1), ("queued", 2)]
    gate = JobGate(1)
    gate.enqueue("other")
    gate.enqueue("k_q2")  # this process's gate knows better than the stored position
    assert {r.key: r.position for r in classroom.live_jobs(store, gate, now=now)}["k_q2"] == 2


def test_cpu_meter_reports_use_since_the_last_reading():
    samples = iter([(100, 1000), (150, 1100), (350, 1300)])
    slept = []
    meter = classroom.CpuMeter(read=lambda: next(samples), sleep=slept.append)
    assert meter.percent() == pytest.approx(50.0) and slept == [0.2]  # first reading samples 0.2 s
    assert meter.percent() == pytest.approx(100.0) and slept == [0.2]  # then: since the last reading


def test_usage_reads_this_machine_without_psutil_or_tensorflow():
    import sys

    u = classroom.usage(classroom.CpuMeter())
    assert u.cores >= 1 and u.mem_total_mb > 100 and 0 < u.mem_used_mb < u.mem_total_mb
    assert u.server_rss_mb > 10 and u.cpu_percent is not None and 0 <= u.cpu_percent <= 100
    lines = classroom.usage_lines(u)
    assert lines[0].startswith("CPU: ") and f"on {u.cores} core(s)" in lines[0]
    assert lines[1].startswith("Memory: ")
    assert u.gpus or "GPU" in lines[-1]
    # in a fresh interpreter: other tests (Ray) may already have imported psutil into this one
    code = ("import sys; from dnn2core import classroom; classroom.usage(classroom.CpuMeter()); "
            "print('psutil' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
