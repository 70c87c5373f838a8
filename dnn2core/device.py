"""Which compute device TensorFlow sees, read lazily and configured once.

GPU memory growth must be switched on before TensorFlow first touches the GPU, or one
learner's job grabs the whole card; ``configure_tensorflow`` does that once per process.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

_lock = threading.Lock()
_configured: "DeviceInfo | None" = None


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "GPU" or "CPU"
    name: str  # human-readable, e.g. "NVIDIA H200" or "CPU (2 cores)"
    gpus: int
    cpu_cores: int
    tensorflow_version: str
    keras_version: str

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.name}"


def cpu_cores() -> int:
    """Cores this process may use (respects CPU affinity/cgroup pinning where visible)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure_tensorflow() -> DeviceInfo:
    """Import TensorFlow, turn on GPU memory growth, and describe the device. Idempotent."""
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        import keras

        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised by someone else: nothing to do
                pass
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            name = details.get("device_name", gpus[0].name)
            if len(gpus) > 1:
                name = f"{name} x{len(gpus)}"
            info = DeviceInfo("GPU", name, len(gpus), cpu_cores(), tf.__version__, keras.__version__)
        else:
            info = DeviceInfo("CPU", f"{cpu_cores()} cores", 0, cpu_cores(), tf.__version__, keras.__version__)
        _configured = info
        return info


def tensorflow_loaded() -> bool:
    """True once some code has imported TensorFlow (lets the sidebar avoid importing it)."""
    import sys
    return "tensorflow" in sys.modules


def process_rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MB from /proc (0 where there is none): the instructor's load
    panel and a worker deciding to retire both read it, without psutil."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0
