"""Shared test infrastructure: the stack as subprocesses, a WebSocket client, broker clean-up.

Imported as ``support.*``: pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``. Then
the folders of ``tests/`` named like our packages (``tests/workers``, ``tests/gateway``...) would be
imported as empty namespace packages in place of the real ones; with the project root on
``sys.path`` too, the real (regular) packages win. Done here because conftest imports ``support``
before anything of the project.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
