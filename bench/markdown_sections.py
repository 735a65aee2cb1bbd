"""Marked sections of BENCHMARKS.md: ``<!-- name:start -->`` … ``<!-- name:end -->``.

Each benchmark script owns its section and rewrites only that one, keeping the rest of the file.
"""

from __future__ import annotations

import re

_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):start -->.*?<!-- (?P=name):end -->", re.DOTALL)


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` holding ``body``; appended at the end if it is absent."""
    section = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    for match in _SECTION.finditer(text):
        if match.group("name") == name:
            return text[: match.start()] + section + text[match.end() :]
    return text.rstrip("\n") + "\n\n" + section + "\n"
