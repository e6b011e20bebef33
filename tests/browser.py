"""Headless Chromium for the report tests: a screenshot of a page, and how much of it
shows a given colour (a rendered matrix cell, a plotted band, the budget line)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from matplotlib import image

NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The browser's path; fails (never skips) where there is none: the report tests
    are part of what CI checks (nox installs Debian's chromium)."""
    found = next((p for name in NAMES if (p := shutil.which(name))), None)
    assert found, "headless Chromium is needed for the report tests: apt-get install chromium"
    return found


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1200, 1600)) -> np.ndarray:
    """Render page (a local file) and return its pixels as RGB floats in 0..1."""
    argv = [chromium(), "--headless", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--window-size={size[0]},{size[1]}",
            f"--screenshot={png}", page.resolve().as_uri()]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium refuses root without it
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return image.imread(png)[..., :3]


def share(pixels: np.ndarray, hex_color: str, tolerance: float = 0.06) -> float:
    """The share of the picture within tolerance of a colour."""
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return float((np.abs(pixels - rgb).max(axis=-1) < tolerance).mean())
