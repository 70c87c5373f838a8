"""The backstop that keeps a learner's live view from falling behind the run store.

A page's queued and live views switch over with a full rerun from their own fragments; should a
browser stop running one of them, the keep-alive fragment sees the view is outdated and redraws.
"""

from __future__ import annotations

from dnn2ui.live import BACKSTOP_S, KEEPALIVE_S, QUEUED_POLL_S, keepalive_interval, outdated_views


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
    assert keepalive_interval(set(), {"a": "queued"}) == BACKSTOP_S


def test_polls_stay_inside_the_idle_budget_of_the_browser_checks():
    # a run is abandoned after DNN2_IDLE_SECONDS without a watch: 12 s in the e2e servers, 180 s by default
    from dnn2core.runs import WATCH_WRITE_S

    worst_gap = max(KEEPALIVE_S, QUEUED_POLL_S, WATCH_WRITE_S) + 1.0  # + a sync round
    assert worst_gap < 12 / 1.5 and BACKSTOP_S < 180
