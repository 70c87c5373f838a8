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


def _module_variables(tree: ast.Module) -> set[str]:
    """Names the page's own top-level code assigns (not imports, functions or classes)."""
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _bound_in(func: ast.AST) -> set[str]:
    bound = {a.arg for a in ast.walk(func) if isinstance(a, ast.arg)}
    bound |= {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.name for n in ast.walk(func) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return bound


@pytest.mark.parametrize("page", ["inside.py"])
def test_page_functions_take_their_inputs_as_arguments(page):
    """Issue 16: a page reads top to bottom. Its functions see module-level variables only if they
    are constants (UPPER_CASE) or the page's URL state, never the model or image chosen further down."""
    tree = ast.parse((ROOT / "pages" / page).read_text())
    variables = {n for n in _module_variables(tree) if not n.isupper() and n != "url"}
    leaks = []
    for func in tree.body:
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bound = _bound_in(func)
            leaks += [f"{func.name} reads {n.id}" for n in ast.walk(func)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in variables
                      and n.id not in bound]
    assert variables and not leaks, leaks
