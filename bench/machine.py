"""One line naming where and when a benchmark ran: date, commit, CPU model, cores, RAM."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


# What the bench scripts write themselves: changed files here do not make the code "+changes".
_WRITTEN_BY_BENCH = (":!BENCHMARKS.md", ":!README.md", ":!RELIABILITY.md", ":!bench/*.json")


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *_WRITTEN_BY_BENCH],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_line() -> str:
    """``Measured <date> at <commit> on <CPU>, <n> cores, <RAM> GB RAM`` (+ a shared-machine note
    when ``BENCH_SHARED=1``)."""
    line = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit()}` on {cpu_model()}, "
        f"{os.cpu_count()} cores, {ram_gb():.0f} GB RAM."
    )
    if os.environ.get("BENCH_SHARED") == "1":
        line += " The machine was shared with other work while measured: absolute figures are noisy."
    return line
