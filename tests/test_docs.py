"""The documents a clone carries: docs/PROTOCOL.md names only settings and close codes the code
has, and states every close code; README links resolve inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from boochat.settings import Settings
from contracts.errors import CloseCode

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"


def test_protocol_names_only_real_settings() -> None:
    """Every ``BOOCHAT_*`` variable PROTOCOL.md mentions is a setting (a renamed one would mislead)."""
    named = set(re.findall(r"BOOCHAT_[A-Z0-9_]+", PROTOCOL.read_text()))
    known = {f"BOOCHAT_{name.upper()}" for name in Settings.model_fields}
    assert named and named <= known, sorted(named - known)


def test_protocol_states_every_close_code() -> None:
    """Each close code the server uses (``contracts.errors.CloseCode``) is in PROTOCOL.md's list."""
    close_codes = PROTOCOL.read_text().partition("Close codes:")[2].partition("\n\n")[0]
    missing = [code.name for code in CloseCode if str(code.value) not in close_codes]
    assert not missing, missing


def test_readme_links_stay_inside_the_repository() -> None:
    """Every relative link of the README names a file of the repository, so a clone has them all."""
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", (ROOT / "README.md").read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert "docs/PROTOCOL.md" in relative
    for link in relative:
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), link
