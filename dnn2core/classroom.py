"""The instructor's controls, without Streamlit: the key check, pause, pushed links, the job list and
the machine's load.

Why here and not on the page: every control must work across server processes (a class may be
served by two), so its state lives in the run store's flags table, and each rule (how long a wrong
key locks the field, what a pushed link may carry) is plain code with plain tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Collection, Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

from dnn2core.env import env_text
from dnn2core.device import process_rss_mb

if TYPE_CHECKING:  # pragma: no cover
    from dnn2core.runs import RunStore
    from dnn2core.training import JobGate

__all__ = [
    "Attempt", "CpuMeter", "GpuUsage", "JobRow", "KeyGuard", "PAUSED_WORDS", "PushLink", "Usage", "current_push",
    "gpu_usage", "instructor_key", "live_jobs", "parse_link", "paused", "push", "qr_png",
    "resolve", "set_paused", "short_url", "stop_push", "usage", "usage_lines",
]

PAUSE_FLAG = "trainings.paused"
PUSH_FLAG = "push.current"
GO_PREFIX = "go:"
PAUSED_WORDS = ("Your instructor has paused new trainings for a moment. Runs already training carry on, and "
                "every finished run can still be opened; press Start again when trainings resume.")


def instructor_key() -> str:
    """The key from ``DNN2_INSTRUCTOR_KEY``; empty means the instructor page is off."""
    return env_text("DNN2_INSTRUCTOR_KEY")


# --------------------------------------------------------------------------------------------
# The key: a wrong one locks the field for longer each time, per session and for the whole server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    ok: bool
    wait_s: float = 0.0  # how long before the next try is even looked at
    checked: bool = True  # False: refused unchecked, the field was still locked

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        wait = f" Wait {max(1, round(self.wait_s))} s before the next try." if self.wait_s > 0 else ""
        return ("Wrong key." if self.checked else "Locked after wrong keys: this try was not checked.") + wait


class KeyGuard:
    """Checks the instructor key, rate-limited by an exponential delay.

    Why both limits: a learner guessing in one tab waits ``session_base * 2**(n-1)`` seconds after
    their n-th wrong key (5, 10, 20, … up to ``cap``); one who opens new tabs to start afresh meets
    the server-wide limit, which after ``server_free`` wrong keys in a row from anyone locks every
    session for ``server_base * 2**(m-1)`` seconds after the m-th further one. The right key resets
    both. A locked try is refused without comparing, so guessing faster gains nothing.
    """

    def __init__(self, expected: str, *, session_base: float = 5.0, server_free: int = 5,
                 server_base: float = 5.0, cap: float = 300.0, forget_after: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not expected:
            raise ValueError("An empty instructor key cannot be checked.")
        self._expected = hashlib.sha256(expected.encode()).digest()
        self.session_base, self.server_free, self.server_base = session_base, server_free, server_base
        self.cap, self.forget_after = cap, forget_after
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, float]] = {}  # session -> (wrong tries in a row, locked until)
        self._server = (0, 0.0, 0.0)  # (wrong tries in a row, locked until, time of the last one)

    def wait_s(self, session: str) -> float:
        """Seconds before ``session`` may try again (0 when it may now)."""
        with self._lock:
            return self._wait_locked(session, self.clock())

    def _wait_locked(self, session: str, now: float) -> float:
        until = max(self._sessions.get(session, (0, 0.0))[1], self._server[1])
        return max(0.0, until - now)

    def attempt(self, session: str, given: str) -> Attempt:
        with self._lock:
            now = self.clock()
            wait = self._wait_locked(session, now)
            if wait > 0:
                return Attempt(False, wait, checked=False)
            ok = hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._expected)
            if ok:
                self._sessions.pop(session, None)
                self._server = (0, 0.0, now)
                return Attempt(True)
            n = self._sessions.get(session, (0, 0.0))[0] + 1
            self._sessions[session] = (n, now + min(self.session_base * 2 ** (n - 1), self.cap))
            m, until, last = self._server
            m = 1 if now - last > self.forget_after else m + 1  # a quiet quarter of an hour forgets old tries
            if m > self.server_free:
                until = now + min(self.server_base * 2 ** (m - self.server_free - 1), self.cap)
            self._server = (m, until, now)
            if len(self._sessions) > 1000:  # closed tabs: forget sessions whose lock ran out long ago
                self._sessions = {s: v for s, v in self._sessions.items() if v[1] > now - self.forget_after}
            return Attempt(False, self._wait_locked(session, now))


# --------------------------------------------------------------------------------------------
# Pause (a flag in the run store: every server process sharing the store sees it)
# --------------------------------------------------------------------------------------------


def paused(store: "RunStore") -> float | None:
    """When new trainings were paused (a timestamp), or None when they are not."""
    raw = store.get_flag(PAUSE_FLAG)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return time.time()


def set_paused(store: "RunStore", on: bool) -> None:
    store.set_flag(PAUSE_FLAG, f"{time.time():.3f}" if on else None)


# --------------------------------------------------------------------------------------------
# Pushed links: one page and its settings, opened by the class through a short URL or a QR code
# --------------------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_ID = re.compile(r"^[0-9a-f]{8}$")
PRIVATE_PARAMS = frozenset({"u", "present", "go"})  # a learner's upload secret, the presenter view, a short link
MAX_PARAMS = 60
MAX_VALUE = 300


@dataclass(frozen=True)
class PushLink:
    """A page (its URL path, e.g. ``mnist``; empty for home) and its settings as query parameters."""

    page: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def relative(self) -> str:
        return self.page + (f"?{urlencode(self.params)}" if self.params else "")

    @property
    def id(self) -> str:
        return hashlib.sha256(self.relative.encode()).hexdigest()[:8]

    def to_json(self) -> str:
        return json.dumps({"page": self.page, "params": [list(p) for p in self.params]})


def parse_link(text: str, pages: Collection[str]) -> PushLink:
    """A link from the address bar (``http://host:8501/mnist?epochs=3``, ``/mnist?…`` or ``mnist?…``)
    checked against this app's page paths. Raises ValueError in plain words.

    The learner's upload secret (``u``), the presenter switch and short links are dropped: pushing a
    link must never hand the instructor's private runs or view to the class."""
    text = (text or "").strip()
    if not text:
        raise ValueError("Paste a link from the address bar (or pick a page).")
    if len(text) > 4000 or any(ord(c) < 32 for c in text):
        raise ValueError("That is not a link of this dashboard.")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)", text)  # "localhost:8501/…" has a port, not a scheme
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise ValueError("Only http(s) links of this dashboard can be pushed.")
    if not scheme and not text.startswith("/"):
        text = ("//" if re.match(r"^[^/?]+:\d+", text) else "/") + text  # "host:8501/mnist" or "mnist?…"
    parts = urlsplit(text)
    page = parts.path.strip("/").split("/")[-1] if parts.path.strip("/") else ""
    if page not in pages:
        raise ValueError(f"No page called {page!r} here; the pages are: {', '.join(sorted(p for p in pages if p))}.")
    params: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name in PRIVATE_PARAMS:
            continue
        if not _NAME.match(name) or len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
            raise ValueError(f"The link has a setting this dashboard never writes ({name[:32]!r}).")
        params.append((name, value))
    if len(params) > MAX_PARAMS:
        raise ValueError(f"The link has {len(params)} settings; a page of this dashboard has far fewer.")
    return PushLink(page, tuple(params))


def push(store: "RunStore", link: PushLink) -> str:
    """Store the link under its short id and make it the class's current link; returns the id."""
    store.set_flag(GO_PREFIX + link.id, link.to_json())
    store.set_flag(PUSH_FLAG, link.id)
    return link.id


def stop_push(store: "RunStore") -> None:
    """The banner goes; the short URL keeps working for whoever has it."""
    store.set_flag(PUSH_FLAG, None)


def resolve(store: "RunStore", short_id: str, pages: Collection[str]) -> PushLink | None:
    """The link behind ``/?go=<id>``; None for anything malformed, unknown or no longer valid."""
    if not isinstance(short_id, str) or not _ID.match(short_id):
        return None
    raw = store.get_flag(GO_PREFIX + short_id)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        query = urlencode([tuple(p) for p in data["params"]])
        link = parse_link(data["page"] + (f"?{query}" if query else ""), pages)
    except (ValueError, KeyError, TypeError):
        return None
    return link if link.id == short_id else None


def current_push(store: "RunStore", pages: Collection[str]) -> PushLink | None:
    short_id = store.get_flag(PUSH_FLAG)
    return resolve(store, short_id, pages) if short_id else None


def short_url(base: str, short_id: str) -> str:
    """``http://host:8501/?go=<id>`` from the address the instructor's browser used."""
    parts = urlsplit(base or "")
    root = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{root}/?go={short_id}"


def qr_png(text: str) -> bytes | None:
    """The text as a QR code (PNG bytes), or None when the ``qrcode`` package is missing."""
    try:
        import io

        import qrcode
    except ImportError:
        return None
    img = qrcode.make(text, border=2, box_size=10)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Jobs on this server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    key: str
    experiment: str
    label: str
    settings: str
    state: str
    position: int | None  # 1-based place in the queue
    elapsed_s: float  # training for (running) or waiting for (queued)
    device: str
    private: bool


def _settings_words(settings: dict) -> str:
    def fmt(v) -> str:
        return "+".join(map(str, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={fmt(v)}" for k, v in settings.items())


def live_jobs(store: "RunStore", gate: "JobGate | None" = None, now: float | None = None) -> list[JobRow]:
    """Every run training or waiting on this store (any process), running first, then the queue in order.

    The queue position comes from this process's gate, else from what the job last wrote."""
    now = time.time() if now is None else now
    rows = []
    for rec in store.runs(states=("queued", "running"), include_reference=False):
        position = gate.position(rec.key) if gate is not None else None
        if position is None and rec.state == "queued":
            position = rec.progress.get("queue_position")
        since = rec.started_at if rec.state == "running" and rec.started_at else rec.created_at
        device = rec.device or rec.progress.get("device", "")
        rows.append(JobRow(rec.key, rec.experiment, rec.label, _settings_words(rec.settings), rec.state,
                           position if rec.state == "queued" else None, max(0.0, now - since), device, rec.private))
    return sorted(rows, key=lambda r: (r.state != "running", r.position or 10**6, -r.elapsed_s))


# --------------------------------------------------------------------------------------------
# The machine's load, read from /proc (no psutil) and nvidia-smi (no TensorFlow import)
# --------------------------------------------------------------------------------------------


def _cpu_times(path: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        with open(path) as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


class CpuMeter:
    """CPU use since the previous reading (the panel refreshes every few seconds); a first reading, or
    one after a long pause, samples 0.2 s so it never reports the average since boot."""

    def __init__(self, read: Callable[[], tuple[int, int] | None] = _cpu_times,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._read, self._sleep = read, sleep
        self._last: tuple[float, tuple[int, int]] | None = None
        self._lock = threading.Lock()

    def percent(self) -> float | None:
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] > 60:
                first = self._read()
                if first is None:
                    return None
                self._sleep(0.2)
                self._last = (now, first)
            second = self._read()
            if second is None:
                return None
            busy = second[0] - self._last[1][0]
            total = second[1] - self._last[1][1]
            self._last = (time.monotonic(), second)
            return 100.0 * busy / total if total > 0 else 0.0


def _meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[name] = int(parts[0]) * 1024  # kB
    except (OSError, ValueError):
        pass
    return out


@dataclass(frozen=True)
class GpuUsage:
    name: str
    util_percent: float
    mem_used_mb: float
    mem_total_mb: float


@dataclass(frozen=True)
class Usage:
    cpu_percent: float | None
    cores: int
    load1: float | None
    mem_used_mb: float
    mem_total_mb: float
    server_rss_mb: float
    workers_rss_mb: float
    gpus: tuple[GpuUsage, ...]
    gpu_note: str


def gpu_usage(timeout: float = 3.0) -> tuple[tuple[GpuUsage, ...], str]:
    """Each GPU's use from ``nvidia-smi`` (no TensorFlow import); a note says why there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        from dnn2core.training import _visible_gpus

        n = _visible_gpus()
        return (), (f"{n} GPU(s) visible, but nvidia-smi is not installed to read their use." if n
                    else "No GPU on this server: training runs on the CPU.")
    try:
        out = subprocess.run([exe, "--query-gpu=name,utilization.gpu,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=timeout,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return (), f"nvidia-smi did not answer ({type(exc).__name__})."
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            gpus.append(GpuUsage(parts[0], float(parts[1]), float(parts[2]), float(parts[3])))
        except (IndexError, ValueError):
            continue
    return tuple(gpus), "" if gpus else "nvidia-smi listed no GPU."


def usage(meter: CpuMeter, worker_pids: Iterable[int] = ()) -> Usage:
    from dnn2core.device import cpu_cores

    mem = _meminfo()
    total = mem.get("MemTotal", 0)
    used = total - mem.get("MemAvailable", mem.get("MemFree", 0))
    try:
        load1: float | None = os.getloadavg()[0]
    except OSError:
        load1 = None
    gpus, note = gpu_usage()
    return Usage(meter.percent(), cpu_cores(), load1, used / 2**20, total / 2**20, process_rss_mb(),
                 sum(process_rss_mb(p) for p in worker_pids), gpus, note)


def usage_lines(u: Usage) -> Sequence[str]:
    """The load in words, one line per resource."""
    cpu = f"{u.cpu_percent:.0f}% busy" if u.cpu_percent is not None else "use unknown"
    load = f", load {u.load1:.2f}" if u.load1 is not None else ""
    lines = [f"CPU: {cpu} on {u.cores} core(s){load}",
             f"Memory: {u.mem_used_mb / 1024:.1f} of {u.mem_total_mb / 1024:.1f} GB in use; this server "
             f"{u.server_rss_mb:,.0f} MB, its training workers {u.workers_rss_mb:,.0f} MB"]
    for i, g in enumerate(u.gpus):
        lines.append(f"GPU {i} ({g.name}): {g.util_percent:.0f}% busy, {g.mem_used_mb:,.0f} of "
                     f"{g.mem_total_mb:,.0f} MB memory")
    if u.gpu_note:
        lines.append(f"GPU: {u.gpu_note}")
    return lines
