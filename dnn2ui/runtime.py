"""Keep Streamlit from resetting Keras while learners train.

After every script run (fragment reruns included) Streamlit calls
``keras.backend.clear_session()`` (``_clean_problem_modules`` in its script runner) — meant
for single-user scripts that rebuild a model on each rerun. On a shared server it resets
Keras' global state under the feet of every training thread: runs slow to a crawl and
``evaluate`` returns garbage (seen in bench/bench_classroom.py, 2 learners). Our models are
built in worker threads under a lock and never redefined per rerun, so the reset is turned
off here; matplotlib figures are still closed as Streamlit does.
"""

from __future__ import annotations

import sys


def _close_matplotlib_only() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001 - never break a page over figure cleanup
            pass


def protect_keras_state() -> bool:
    """Replace Streamlit's per-run Keras reset; True when it was found and replaced."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if getattr(script_runner, "_clean_problem_modules", None) is None:
        return False
    script_runner._clean_problem_modules = _close_matplotlib_only
    return True
