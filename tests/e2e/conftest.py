"""Shared helpers of the Meltano end-to-end tests: the project, its CLI and the sandbox.

The scripts under scripts/ (not a package) are imported by putting that folder on sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
