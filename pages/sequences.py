"""Placeholder until issue #6 lands."""

from dnn2ui.placeholder import coming_soon

coming_soon("pages/sequences.py", 6)
