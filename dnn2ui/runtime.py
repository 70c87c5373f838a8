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


CONFIG_POLL_S = 5.0


def slow_config_polling(seconds: float = CONFIG_POLL_S) -> bool:
    """Poll config.toml (and secrets) every ``seconds`` instead of Streamlit's 0.2 s.

    Streamlit watches its config files with a polling thread even when ``fileWatcherType`` is
    "none"; py-spy on a server with a class waiting put 6.5% of the web process's busy samples in
    those stat calls. A classroom server's config does not change during a lesson. True when set."""
    try:
        from streamlit.watcher import polling_path_watcher
    except ImportError:
        return False
    if not hasattr(polling_path_watcher, "_POLLING_PERIOD_SECS"):
        return False
    polling_path_watcher._POLLING_PERIOD_SECS = float(seconds)  # read by each poll task when it runs
    return True


def expire_disconnected_sessions() -> int:
    """Drop closed tabs' sessions whose reconnection window (``server.disconnectedSessionTTL``) has
    passed; returns how many were dropped (0 without a Streamlit runtime). Streamlit keeps them in a
    TTL cache that only expires entries when it is next used, so after a class leaves, 50 closed
    sessions stayed in memory for good (bench/bench_runs.py). Runs on Streamlit's event loop (the
    cache is not thread-safe). The registry collects garbage only when this (or a job) freed something."""
    try:
        from streamlit.runtime import Runtime

        import asyncio

        runtime = Runtime.instance()
        cache = runtime._session_mgr._session_storage._cache
        loop = runtime._get_async_objs().eventloop

        async def expire() -> int:
            before = len(cache)
            cache.expire()
            return before - len(cache)

        # wait for it: the caller collects garbage next, and should find the dropped sessions
        return int(asyncio.run_coroutine_threadsafe(expire(), loop).result(timeout=10))
    except Exception:  # noqa: BLE001 - another Streamlit version, or no server (tests): nothing to do
        return 0
