"""Placeholder until issue #7 lands."""

from dnn2ui.placeholder import coming_soon

coming_soon("pages/tricks.py", 7)
