"""Marked sections of BENCHMARKS.md: ``<!-- name:start -->`` … ``<!-- name:end -->``.

Each benchmark script owns its sections; a script that rewrites the file keeps everyone else's.
"""

from __future__ import annotations

import re

_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):start -->.*?<!-- (?P=name):end -->", re.DOTALL)


def marked_sections(text: str) -> list[str]:
    """Every marked section of ``text``, markers included, in order."""
    return [match.group(0) for match in _SECTION.finditer(text)]


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` holding ``body``; appended at the end if it is absent."""
    section = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    for match in _SECTION.finditer(text):
        if match.group("name") == name:
            return text[: match.start()] + section + text[match.end() :]
    return text.rstrip("\n") + "\n\n" + section + "\n"
