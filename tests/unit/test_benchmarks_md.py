"""BENCHMARKS.md sections: each bench script rewrites only its own (bench/markdown_sections.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _sections() -> ModuleType:
    spec = importlib.util.spec_from_file_location("markdown_sections", BENCH / "markdown_sections.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_section_is_appended_then_replaced_in_place() -> None:
    md = _sections()
    text = md.replace_section("# Benchmarks\n\nquality table\n", "ann", "## ANN\nv1")
    assert text == "# Benchmarks\n\nquality table\n\n<!-- ann:start -->\n## ANN\nv1\n<!-- ann:end -->\n"
    text = md.replace_section(text + "\nmore\n", "ann", "## ANN\nv2")
    assert "v1" not in text and text.endswith("<!-- ann:end -->\n\nmore\n") and text.count("ann:start") == 1


def test_other_sections_are_left_alone() -> None:
    md = _sections()
    text = md.replace_section(md.replace_section("# Benchmarks\n", "quality", "Q"), "ann", "A1")
    assert md.replace_section(text, "ann", "A2") == text.replace("A1", "A2")
    assert "<!-- quality:start -->\nQ\n<!-- quality:end -->" in text
