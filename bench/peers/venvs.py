"""Each peer runs from a virtualenv of its own under bench/.venvs/ (git-ignored), outside the project's
dependencies. A venv is made once and remade when its pinned requirements change."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parent.parent / ".venvs"
INSTALL_TIMEOUT = 900.0  # seconds: Synapse and its dependencies from PyPI, on a slow day


async def ensure(name: str, requirements: list[str]) -> Path:
    """The Python of venv ``name`` with exactly ``requirements`` (pinned) installed."""
    folder = VENVS / name
    python = folder / "bin" / "python"
    stamp = folder / "bench-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(folder, ignore_errors=True)
    print(f"installing {', '.join(requirements)} into {folder} (once)", file=sys.stderr, flush=True)
    await _run(sys.executable, "-m", "venv", str(folder))
    await _run(str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements)
    stamp.write_text(wanted)
    return python


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
    try:
        code = await asyncio.wait_for(process.wait(), INSTALL_TIMEOUT)
    except TimeoutError:
        process.kill()
        raise
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {code}")
