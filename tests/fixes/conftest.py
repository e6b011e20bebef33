from __future__ import annotations

import sys
from pathlib import Path

FAKE = Path(__file__).resolve().parent.parent / "fakes" / "child.py"
FAKE_TEMPLATE = [sys.executable, str(FAKE), "{mode}", "{arg}"]
