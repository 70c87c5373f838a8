"""Placeholder until issue #4 lands."""

from dnn2ui.placeholder import coming_soon

coming_soon("pages/cats_dogs.py", 4)
