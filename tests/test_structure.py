"""Structure guards: pages use only the names dnn2core modules list in ``__all__``, and every
listed name exists (so ``__all__`` stays the honest public surface of each module)."""

from __future__ import annotations

import ast
import importlib

import pytest

from conftest import ROOT

PAGES = sorted((ROOT / "pages").glob("*.py"))


def _dnn2core_uses(path) -> set[tuple[str, str]]:
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}
    used: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "dnn2core":
            for a in node.names:
                aliases[a.asname or a.name] = f"dnn2core.{a.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnn2core."):
            used.update((node.module, a.name) for a in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add((aliases[node.value.id], node.attr))
    return used


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_pages_use_only_listed_names(page):
    unlisted = []
    for module_name, name in sorted(_dnn2core_uses(page)):
        module = importlib.import_module(module_name)
        if hasattr(module, "__all__") and name not in module.__all__:
            unlisted.append(f"{module_name}.{name}")
    assert not unlisted, f"{page.name} uses names missing from __all__: {unlisted}"


def test_every_listed_name_exists():
    import dnn2core

    for module_name in dnn2core.__all__:
        module = importlib.import_module(f"dnn2core.{module_name}")
        missing = [n for n in getattr(module, "__all__", []) if not hasattr(module, n)]
        assert not missing, f"dnn2core.{module_name}.__all__ lists missing names: {missing}"
