"""Real-browser end-to-end helpers: a `streamlit run` server and Debian's Chromium via Playwright.

Reusable by any e2e check: ``Server`` starts the app on a free local port and always stops it;
``launch_browser`` opens /usr/bin/chromium (never a downloaded browser); ``wait_for_app_idle``
waits on Streamlit's own run-state signal instead of fixed sleeps; ``wait_for_rerun`` does the
same after a click, so a check never reads the page before the rerun it caused has finished.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

# Streamlit 1.6x sets data-test-script-state on the app root: initial (no run yet), running,
# rerunRequested, stopRequested, compilationError or notRunning. The status widget shows a
# running icon while a script or fragment runs.
APP_ROOT = '[data-testid="stApp"]'
RUNNING_ICONS = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'

_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  const state = app.getAttribute('data-test-script-state');
  if (state === 'compilationError') return true;  // finished, with an error the caller reports
  if (state !== 'notRunning') return false;
  if (document.querySelector('%s')) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  return true;
}""" % RUNNING_ICONS

# Plotly and KaTeX render after the script has finished: wait for them so a screenshot shows
# the page as a learner sees it.
_PAINTED_JS = """() => {
  for (const c of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (!c.querySelector('.main-svg')) return false;
  for (const s of document.querySelectorAll('[data-testid="stSkeleton"]'))
    if (s.offsetParent !== null) return false;
  return true;
}"""


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB, from /proc (the server's, for the memory benchmarks)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _processes() -> dict[int, tuple[int, str, bytes]]:
    """Every process on the machine: pid -> (parent pid, short name, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        table[int(entry.name)] = (int(tail.split()[1]), head.split("(", 1)[1], cmdline)
    return table


def worker_pids(server_pid: int) -> list[int]:
    """The server's training worker processes (multiprocessing spawn children running TensorFlow)."""
    return [pid for pid, (ppid, _, cmdline) in _processes().items()
            if ppid == server_pid and b"spawn_main" in cmdline]

def workers_rss_mb(server_pid: int) -> float:
    """Resident memory of all the server's training workers together, in MB."""
    return sum(rss_mb(p) for p in worker_pids(server_pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), 0.0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_pids() -> list[int]:
    """This process's Chromium processes (the browser, its renderers and helpers, Playwright's driver)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        if "chrom" in table[pid][1] or "playwright" in table[pid][1]:
            found.append(pid)
    return found


def renice_browsers(nice: int) -> int:
    """Lower the priority of this process's Chromium processes (the browser and its renderers; new
    renderers inherit it). In a class the learners' browsers run on their own machines: at a lower
    priority here they approximate that, leaving the server's cores to the server first."""
    done = 0
    for pid in browser_pids():
        try:
            os.setpriority(os.PRIO_PROCESS, pid, max(nice, os.getpriority(os.PRIO_PROCESS, pid)))
            done += 1
        except OSError:
            pass
    return done


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (bind to 0), so parallel runs never clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as r:
            return r.status == 200 and r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


RUNS_PREFIX = "dnn2-e2e-runs-"
# The servers' idle budget: short, so a check can prove a run outlives a page switch, yet well above
# the keep-alive's worst gap (a 5 s fragment tick, a 4 s watch-write throttle, a 1 s sync round) on a
# loaded CI machine.
IDLE_BUDGET_S = 12


def sweep_stale_run_dirs() -> list[Path]:
    """Remove the run stores of harness processes that are gone (killed before they could clean up)."""
    removed = []
    for d in Path(tempfile.gettempdir()).glob(f"{RUNS_PREFIX}*"):
        pid = d.name[len(RUNS_PREFIX):].split("-", 1)[0]
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
                continue  # its harness still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        shutil.rmtree(d, ignore_errors=True)  # gone, or an old name without a pid
        removed.append(d)
    return removed


def store_rows(runs_dir: str | Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of a query on a server's run store index, opened read-only (checks and benchmarks look,
    the server writes)."""
    import sqlite3

    con = sqlite3.connect(f"file:{Path(runs_dir) / 'index.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


class ServerError(RuntimeError):
    pass


class Server:
    """``with Server() as srv:`` runs ``streamlit run app.py`` headless on a free port until the block ends.

    The server gets DNN2_OFFLINE=1 on top of the inherited environment (so DNN2_DATA_DIR from
    make still applies). Its output goes to ``log_path``; the tail is shown when it fails to start.
    """

    def __init__(self, port: int | None = None, health_timeout: float = 90.0, log_path: Path | None = None,
                 env: dict[str, str] | None = None, python: str | None = None,
                 address: str | None = "127.0.0.1", root: Path | None = None):
        self.root = Path(root) if root is not None else ROOT  # another checkout's app (an A/B benchmark)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_timeout = health_timeout
        self.log_path = log_path or ARTIFACTS / "server.log"
        # A short idle budget so the browser checks can prove that a run outlives a page switch but
        # not an abandoned tab; the run store is a fresh folder per start (see start()).
        self.env = {"TF_CPP_MIN_LOG_LEVEL": "2", "DNN2_IDLE_SECONDS": str(IDLE_BUDGET_S), **os.environ, "DNN2_OFFLINE": "1",
                    **(env or {})}
        self._own_runs_dir: str | None = None
        self._env_override = env
        self.python = python or sys.executable
        self.address = address  # None: Streamlit's default, exactly as `make run` starts it
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.healthy_after = float("nan")

    @property
    def command(self) -> list[str]:
        cmd = [self.python, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(self.port)]
        return cmd + (["--server.address", self.address] if self.address else [])

    def start(self) -> "Server":
        if "DNN2_RUNS_DIR" not in (self._env_override or {}):
            # never the machine's ~/.dnn2/runs: a fresh store, removed again by stop(); its name carries
            # this process's pid, so a later run removes it if this one was killed before stop()
            sweep_stale_run_dirs()
            self._own_runs_dir = tempfile.mkdtemp(prefix=f"{RUNS_PREFIX}{os.getpid()}-")
            self.env["DNN2_RUNS_DIR"] = self._own_runs_dir
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.started_at = time.perf_counter()
        # Own process group: stop() ends the server and anything it spawned, and nothing else.
        self.proc = subprocess.Popen(self.command, cwd=self.root, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = self.started_at + self.health_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"streamlit exited with code {self.proc.returncode} before it was healthy.\n"
                                  + self.log_tail())
            if health(self.url, timeout=1.0):
                self.healthy_after = time.perf_counter() - self.started_at
                return
            time.sleep(0.05)
        raise ServerError(f"{self.url}/_stcore/health did not answer 'ok' within {self.health_timeout:g} s.\n"
                          + self.log_tail())

    def store_rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        """``store_rows`` on this server's run store."""
        return store_rows(self.env["DNN2_RUNS_DIR"], sql, args)

    def log_tail(self, lines: int = 30) -> str:
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no server log)"
        return "--- server log (tail) ---\n" + "\n".join(text)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()
        self.proc = None
        if self._own_runs_dir is not None:
            shutil.rmtree(self._own_runs_dir, ignore_errors=True)
            self._own_runs_dir = None

    def __enter__(self) -> "Server":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def launch_browser(playwright, headless: bool = True):
    """Debian's Chromium; fails clearly when it is missing (make e2e installs it with apt)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `bash tests/e2e/install_chromium.sh` (apt, never a "
                                "browser download).")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=headless, args=CHROMIUM_ARGS)


def wait_for_app_idle(page, timeout: float = 120.0, painted: bool = True) -> float:
    """Wait until Streamlit has finished running the script (and, with ``painted``, drawn charts).

    Returns the seconds waited. Raises Playwright's TimeoutError after ``timeout`` seconds.
    """
    t0 = time.perf_counter()
    page.wait_for_function(_IDLE_JS, timeout=timeout * 1000, polling=100)
    if painted:
        left = max(timeout - (time.perf_counter() - t0), 1.0)
        page.wait_for_function(_PAINTED_JS, timeout=left * 1000, polling=100)
    return time.perf_counter() - t0


def wait_for_rerun(page, action: Callable[[], object], timeout: float = 120.0,
                   start_within: float | None = None) -> float | None:
    """Do ``action`` (a click, a key press) and wait for the rerun it causes to finish.

    A MutationObserver counts the script-state changes away from notRunning, so a rerun that
    starts and ends between two polls is still seen. With ``start_within``, an action that starts
    no rerun in that many seconds (a tab switch that only shows what is drawn) returns None.
    """
    page.evaluate("""() => {
      window.__dnn2Runs = 0;
      const app = document.querySelector('[data-testid="stApp"]');
      if (window.__dnn2Observer) window.__dnn2Observer.disconnect();
      window.__dnn2Observer = new MutationObserver(() => {
        if (app.getAttribute('data-test-script-state') !== 'notRunning') window.__dnn2Runs += 1;
      });
      window.__dnn2Observer.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
    }""")
    t0 = time.perf_counter()
    action()
    try:
        page.wait_for_function("() => window.__dnn2Runs > 0", timeout=(start_within or timeout) * 1000, polling=50)
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError
        if start_within is None:
            raise
        return None  # nothing reran
    left = max(timeout - (time.perf_counter() - t0), 1.0)
    wait_for_app_idle(page, left)
    return time.perf_counter() - t0


@dataclass
class PageProblems:
    exceptions: list[str]
    errors: list[str]
    title: str | None


def page_problems(page) -> PageProblems:
    """What a learner would see going wrong: exception boxes, error alerts, and the page's h1."""
    exceptions = [t.strip()[:300] for t in page.locator('[data-testid="stException"]').all_inner_texts()]
    errors = [t.strip()[:300] for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()]
    if page.locator('[data-testid="stApp"][data-test-script-state="compilationError"]').count():
        exceptions.append("the script did not compile (compilationError)")
    h1 = page.locator('[data-testid="stMain"] h1')
    title = h1.first.inner_text().strip() if h1.count() else None
    return PageProblems(exceptions, errors, title)


def full_page_screenshot(page, path: Path, width: int = 1400, max_height: int = 12000) -> None:
    """Streamlit scrolls inside its main container, so grow the viewport to the content first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    height = page.evaluate("""() => {
      const m = document.querySelector('[data-testid="stMain"]') || document.body;
      return Math.max(m.scrollHeight, document.body.scrollHeight);
    }""")
    page.set_viewport_size({"width": width, "height": int(min(max(height, 600), max_height))})
    try:
        page.wait_for_function(_PAINTED_JS, timeout=10_000, polling=100)  # charts resize with the viewport
        page.screenshot(path=str(path), full_page=True)
    finally:
        if original:
            page.set_viewport_size(original)


# Text a learner cannot read: an element inside the main area (or the sidebar) whose content is
# wider than its box while the box clips it (overflow hidden, or an ellipsis). Scroll boxes (code,
# tables) scroll on purpose and are left out; so are boxes of hidden tabs (zero width).
_CLIPPED_JS = """() => {
  const roots = [document.querySelector('[data-testid="stMain"]'),
                 document.querySelector('[data-testid="stSidebar"]')].filter(Boolean);
  const out = [];
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      if (el.clientWidth <= 2 || el.scrollWidth <= el.clientWidth + 1) continue;  // 1 px: screen-reader text
      const cs = getComputedStyle(el);
      if (cs.overflowX === 'auto' || cs.overflowX === 'scroll') continue;
      if (cs.overflowX === 'visible' && cs.textOverflow !== 'ellipsis') continue;
      const text = (el.innerText || '').trim();
      if (!text) continue;
      if (el.closest('[data-testid="stCode"], [data-testid="stDataFrame"], .js-plotly-plot, pre, .katex-mathml')) continue;
      const owner = el.closest('[data-testid]');
      const short = Array.from(text.replace(/\s+/g, ' ')).slice(0, 50).join('');
      out.push(`${owner ? owner.dataset.testid : el.tagName}: "${short}" (${el.scrollWidth} > ${el.clientWidth} px)`);
    }
  }
  return [...new Set(out)];
}"""


def clipped_text(page) -> list[str]:
    """Clipped (truncated or cut-off) text now visible on the page; see _CLIPPED_JS."""
    return page.evaluate(_CLIPPED_JS)


def clipped_in_every_tab(page, settle_ms: int = 250) -> list[str]:
    """Clipped text in each of the page's main tabs in turn (tabs switch in the browser, no rerun)."""
    found = clipped_text(page)
    tabs = page.locator('[data-testid="stMain"] [data-baseweb="tab-list"] [role="tab"]')
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        if not tab.is_visible():
            continue
        tab.click()
        page.wait_for_timeout(settle_ms)
        found += [f"tab {tab.inner_text().strip()!r}: {c}" for c in clipped_text(page)]
    return list(dict.fromkeys(found))
