"""
Session-wide setup: subprocesses (C{twistd -n txpulse}, C{txpulse-client},
C{python -c ...}) import txpulse from this working tree's C{src}, like the
tests themselves, not whatever copy C{make install} last put in the
virtualenv: a test always exercises the code beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))
