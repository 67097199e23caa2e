"""Shared test infrastructure: the stack as subprocesses, a WebSocket client, broker clean-up.

Imported as ``support.*``: pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``.
"""
