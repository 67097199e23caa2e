"""The README's client session runs, as written, against a live stack."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def client_session() -> str:
    text = README.read_text()
    match = re.search(r"<!-- client-session -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README has no client session snippet"
    return match.group(1)


async def test_readme_client_session_runs(stack):
    """The snippet signs in, creates a room and sends a message, with the stack's URL put in."""
    code = client_session()
    assert 'URL = "ws://127.0.0.1:8765/ws"' in code
    code = code.replace('URL = "ws://127.0.0.1:8765/ws"', f'URL = "{stack.ws_url}"')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert "signed in as Ann" in text and re.search(r"sent item \d+ to Friday", text), text
