"""Server settings from the environment (``DNN2_*``): one reader, one set of rules and messages.

An instructor sets these once for a class (README, "Server settings"). A value that is set but
wrong stops with a message naming the variable, instead of quietly running the class on a
default nobody chose; an unset or blank variable means the default.
"""

from __future__ import annotations

import math
import os

__all__ = ["env_flag", "env_number", "env_text"]


def env_text(name: str, default: str = "") -> str:
    """The variable's text, stripped; ``default`` when unset or blank."""
    return os.environ.get(name, "").strip() or default


def env_flag(name: str) -> bool:
    """True for 1/true/yes/on, False when unset, blank or 0/false/no/off; anything else is an error."""
    raw = env_text(name).lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0 (true/false), got {raw!r}.")


def env_number(name: str, default: float, *, whole: bool = False, minimum: float | None = None,
               maximum: float | None = None, above: float | None = None) -> float:
    """A number: whole (an int) or not; within [minimum, maximum], and strictly above ``above``."""
    raw = env_text(name)
    if not raw:
        return default
    try:
        value: float = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind}, got {raw!r}.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {raw!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {value:g}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {value:g}.")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be above {above:g}, got {value:g}.")
    return value
