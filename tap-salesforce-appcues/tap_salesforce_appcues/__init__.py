"""Singer tap: incremental Salesforce Lead/Contact/account records and Appcues events."""

import sys as _sys
from pathlib import Path as _Path

# A wheel or sdist of this plugin carries the shared clients in _vendor/ (hatch_build.py).
# Appended, not prepended: where the clients are installed on their own (the repository's
# development venv), that copy is the one imported.
_VENDOR = _Path(__file__).with_name("_vendor")
if _VENDOR.is_dir() and str(_VENDOR) not in _sys.path:
    _sys.path.append(str(_VENDOR))
