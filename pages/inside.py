"""Placeholder until issue #5 lands."""

from dnn2ui.placeholder import coming_soon

coming_soon("pages/inside.py", 5)
