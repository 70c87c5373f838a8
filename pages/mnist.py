"""Placeholder until issue #3 lands."""

from dnn2ui.placeholder import coming_soon

coming_soon("pages/mnist.py", 3)
