"""The backstop that keeps a learner's live view from falling behind the run store.

A page's queued and live views switch over with a full rerun from their own fragments; should a
browser stop running one of them, the keep-alive fragment sees the view is outdated and redraws.
"""

from __future__ import annotations

from dnn2ui.live import outdated_views


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
