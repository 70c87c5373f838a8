"""The backstop that keeps a learner's live view from falling behind the run store.

A page's queued and live views switch over with a full rerun from their own fragments; should a
browser stop running one of them, the keep-alive fragment sees the view is outdated and redraws.
"""

from __future__ import annotations

from dnn2ui.live import (BACKSTOP_S, KEEPALIVE_S, QUEUED_BACKSTOP_S, QUEUED_FAR_POLL_S, QUEUED_POLL_S,
                         keepalive_interval, outdated_views, queued_poll_interval, still_live)


def test_a_view_that_matches_the_store_is_left_alone():
    assert outdated_views({"a": "queued", "b": "running"}, {"a": "queued", "b": "running"}) == []


def test_a_queued_view_of_a_run_that_trains_is_redrawn():
    assert outdated_views({"a": "queued"}, {"a": "running"}) == ["a"]


def test_a_live_view_of_a_run_that_ended_or_vanished_is_redrawn():
    on_screen = {"done": "running", "stopped": "queued", "gone": "running", "failed": "running", "ok": "running"}
    states = {"done": "done", "stopped": "stopped", "gone": None, "failed": "interrupted", "ok": "running"}
    assert outdated_views(on_screen, states) == ["done", "stopped", "gone", "failed"]


def test_a_running_view_of_a_store_that_still_says_queued_waits():
    # the job was admitted a moment before the store heard of it: its own fragment shows it
    assert outdated_views({"a": "running"}, {"a": "queued"}) == []


def test_the_keep_alive_runs_often_only_when_nothing_else_tells_the_store():
    assert keepalive_interval(set(), {}) is None  # nothing live: no fragment at all
    assert keepalive_interval({"a"}, {}) == KEEPALIVE_S  # watched from another page
    assert keepalive_interval({"a"}, {"a": "running"}) == BACKSTOP_S  # its own view polls
    assert keepalive_interval({"a", "b"}, {"a": "queued"}) == KEEPALIVE_S  # b is not on this page
    assert keepalive_interval(set(), {"a": "queued", "b": "running"}) == BACKSTOP_S
    # only places in the queue on screen: their own polls are slow, so is the backstop
    assert keepalive_interval(set(), {"a": "queued"}) == QUEUED_BACKSTOP_S == 60
    assert keepalive_interval({"a"}, {"a": "queued"}, idle_seconds=12) == BACKSTOP_S  # a short idle budget


def test_a_page_stops_polling_once_its_runs_have_ended():
    # before, the keep-alive fragment of a finished run's page polled every 5 s for as long as the tab stayed open
    watching = {"done", "stopped", "gone", "queued", "running"}
    states = {"done": "done", "stopped": "stopped", "queued": "queued", "running": "running"}
    assert still_live(watching, states) == {"queued", "running"}
    assert keepalive_interval(still_live({"done"}, states), {}) is None


def test_only_the_head_of_the_queue_polls_often():
    assert queued_poll_interval(1) == queued_poll_interval(None) == QUEUED_POLL_S == 5
    assert queued_poll_interval(2) == queued_poll_interval(30) == QUEUED_FAR_POLL_S == 10
    # never so rarely that the run is abandoned (idle budget) or its watch lapses (the watch window)
    assert queued_poll_interval(3, idle_seconds=12) == QUEUED_POLL_S
    assert queued_poll_interval(3, idle_seconds=24) == 8


def test_polls_stay_inside_the_idle_budget_of_the_browser_checks():
    # a run is abandoned after DNN2_IDLE_SECONDS without a watch: 12 s in the e2e servers, 180 s by default
    from dnn2core.runs import WATCH_WINDOW_S, WATCH_WRITE_S

    worst_gap = max(KEEPALIVE_S, queued_poll_interval(30, idle_seconds=12), WATCH_WRITE_S) + 1.0  # + a sync round
    assert worst_gap < 12 / 1.5 and BACKSTOP_S < 180
    assert max(QUEUED_FAR_POLL_S, WATCH_WRITE_S) + 1.0 < WATCH_WINDOW_S  # a far-back learner still counts as watching


def test_a_live_views_curves_are_built_once_per_history():
    import pandas as pd

    from dnn2ui.live import _curve_figure

    history = pd.DataFrame({"model": ["CNN"] * 4, "epoch": [1, 1, 2, 2], "metric": ["loss", "val_loss"] * 2,
                            "value": [0.5, 0.6, 0.3, 0.4]})
    first = _curve_figure(history, "loss", ())
    assert _curve_figure(history.copy(), "loss", ()) is first  # the next poll, same epochs: not rebuilt
    assert [list(t.y) for t in first.data] == [[0.5, 0.3], [0.6, 0.4]]  # train, then validation
    grown = pd.concat([history, pd.DataFrame({"model": ["CNN"] * 2, "epoch": [3, 3], "metric": ["loss", "val_loss"],
                                              "value": [0.2, 0.35]})], ignore_index=True)
    assert [list(t.y) for t in _curve_figure(grown, "loss", ()).data] == [[0.5, 0.3, 0.2], [0.6, 0.4, 0.35]]
    assert _curve_figure(history, "loss", (("log_y", True),)).layout.yaxis.type == "log"
