"""Decoding a palette-PNG bomb (about 100 KB that inflates to 7,745 × 7,745 pixels) stays within
a bounded amount of memory: measured as the peak RSS of a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import REPO

MEASURE = """
import resource, sys
from imagematch.images import ImageLimits
data = open(sys.argv[1], "rb").read()
limits = ImageLimits(max_bytes=20_000_000, max_pixels=60_000_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = limits.decode(data)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(image.size, (after - before) // 1024)
"""


def palette_bomb(path: Path) -> Path:
    Image.new("P", (7745, 7745), 0).save(path, format="PNG", optimize=True)
    return path


def test_the_palette_png_bomb_decodes_within_150_mb(tmp_path: Path) -> None:
    bomb = palette_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(bomb)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    ).stdout.split(")")
    size, peak_mb = out[0] + ")", int(out[1])
    assert size == "(2048, 2048)"
    assert peak_mb < 150, f"decoding took {peak_mb} MB"
