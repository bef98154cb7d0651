"""Habits that keep the code easy to change: lint, format, and Qt kept out of the core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install '.[test]'")
    return found


def test_ruff_lint_and_format():
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_import_contract_keeps_qt_out_of_the_core():
    result = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_core_and_cli_import_without_qt():
    """The headless lane: everything but nnviz.qt loads with no Qt module imported."""
    code = (
        "import sys, pkgutil, importlib, nnviz.core, nnviz.cli\n"
        "for m in pkgutil.iter_modules(nnviz.core.__path__):\n"
        "    importlib.import_module('nnviz.core.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'superqt', 'shiboken6')]\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_in_the_tree_is_installed():
    """A subpackage missing from pyproject's list works from the checkout but not installed."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "nnviz").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
