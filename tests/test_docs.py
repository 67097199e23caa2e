"""The documents a clone carries: docs/PROTOCOL.md kept in step with the reference copy, README
links that resolve inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
# The reference we revise, beside the repository when it is checked out in the team's folder (CI too).
REFERENCE = ROOT.parent / "shared" / "PROTOCOL.md"


def test_protocol_copy_is_in_step_with_the_reference() -> None:
    """docs/PROTOCOL.md equals ../shared/PROTOCOL.md (``cp ../shared/PROTOCOL.md docs/`` fixes it);
    without the reference beside the repository, the copy is at least there and not empty."""
    copy = PROTOCOL.read_text()
    if REFERENCE.exists():
        assert copy == REFERENCE.read_text(), "docs/PROTOCOL.md differs from ../shared/PROTOCOL.md: copy it again"
    else:
        assert copy.strip().startswith("#")


def test_readme_links_stay_inside_the_repository() -> None:
    """Every relative link of the README names a file of the repository, so a clone has them all."""
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", (ROOT / "README.md").read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert "docs/PROTOCOL.md" in relative
    for link in relative:
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), link
