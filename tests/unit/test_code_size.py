"""Size limits of the house style, read with ``ast`` (nothing is imported): no function over 50
lines and no module over 400 in ``imagematch/`` and ``index_builder/`` (route factories and nested
functions included: each is measured on its own), ``modal_app.py`` wiring only (300 lines), and
``decode_image`` called only inside ``images.py`` (every other decode goes through the limits)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 400
MAX_MODAL_APP_LINES = 300

SOURCES = sorted(path for root in ("imagematch", "index_builder") for path in (REPO / root).rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """From its ``def`` (decorators not counted) to its last line, docstring included."""
    assert node.end_lineno is not None
    return node.end_lineno - node.lineno + 1


def test_the_scan_finds_the_packages() -> None:
    names = {_name(path) for path in SOURCES}
    assert {"imagematch/app.py", "index_builder/build.py"} <= names


def test_no_function_is_over_50_lines() -> None:
    too_long = {
        f"{_name(path)}:{fn.lineno} {fn.name}": _lines(fn)
        for path in SOURCES
        for fn in _functions(ast.parse(path.read_text()))
        if _lines(fn) > MAX_FUNCTION_LINES
    }
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {too_long}"


def test_no_module_is_over_400_lines() -> None:
    sizes = {_name(path): len(path.read_text().splitlines()) for path in SOURCES}
    too_long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them): {too_long}"


def test_modal_app_is_wiring_only() -> None:
    lines = len((REPO / "modal_app.py").read_text().splitlines())
    assert lines <= MAX_MODAL_APP_LINES, f"modal_app.py has {lines} lines: move logic to imagematch/deploy/"


def test_decode_image_is_called_only_in_images_py() -> None:
    callers = [
        _name(path)
        for path in [*SOURCES, REPO / "modal_app.py"]
        if path.name != "images.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("decode_image")
    ]
    assert not callers, f"decode_image called outside images.py (use ImageLimits.decode): {callers}"
