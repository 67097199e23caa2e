"""The lock files agree with pyproject.toml: every declared dependency is pinned there, at a version
its specifier allows, and nothing is pinned for a dependency pyproject.toml no longer declares.
``make lock`` fixes a failure here. The image's lock holds no dev or test package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BASE = ROOT / "requirements" / "base.txt"
DEV = ROOT / "requirements" / "dev.txt"
# uv marks what pyproject.toml asked for directly with this "via" line.
DIRECT = "boochat (pyproject.toml)"


def pins(lock: Path) -> dict[str, Version]:
    """name -> pinned version of every package in a lock file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock.read_text(), re.MULTILINE)
    return {canonicalize_name(name): Version(version) for name, version in found}


def direct(lock: Path) -> set[str]:
    """Packages the lock holds because pyproject.toml names them (not as someone's dependency)."""
    names, current = set(), None
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            current = canonicalize_name(match.group(1))
        elif current and line.strip().lstrip("#").strip() in (DIRECT, f"via {DIRECT}"):
            names.add(current)
    return names


def declared(*extras: str) -> list[Requirement]:
    groups = [PROJECT["dependencies"], *(PROJECT["optional-dependencies"][extra] for extra in extras)]
    return [Requirement(text) for group in groups for text in group]


@pytest.mark.parametrize(("lock", "extras"), [(BASE, ()), (DEV, ("dev", "local"))], ids=["base", "dev"])
def test_the_lock_pins_every_declared_dependency_and_only_those(lock: Path, extras: tuple[str, ...]) -> None:
    locked = pins(lock)
    wanted = declared(*extras)
    missing = sorted(r.name for r in wanted if canonicalize_name(r.name) not in locked)
    assert not missing, f"{lock.name} lacks {missing}: run make lock"
    outside = sorted(
        f"{r.name}=={locked[canonicalize_name(r.name)]} (pyproject.toml: {r.specifier})"
        for r in wanted
        if not r.specifier.contains(locked[canonicalize_name(r.name)], prereleases=True)
    )
    assert not outside, f"{lock.name} pins versions pyproject.toml excludes: {outside}; run make lock"
    stale = direct(lock) - {canonicalize_name(r.name) for r in wanted}
    assert not stale, f"{lock.name} still pins {sorted(stale)}, which pyproject.toml no longer names: run make lock"


def test_both_locks_pin_the_same_versions() -> None:
    """The dev lock is the base lock plus the extras, never other versions of the same packages."""
    base, dev = pins(BASE), pins(DEV)
    assert {name: dev.get(name) for name in base} == base


def test_the_image_lock_has_no_test_tool_or_stand_in() -> None:
    """(That it names no extra directly is the first test's: the base lock's direct pins are exactly
    pyproject.toml's dependencies.)"""
    assert {"nx-27017", "pytest", "ruff", "uv"} & set(pins(BASE)) == set()


def test_the_lock_is_installed_with_hashes() -> None:
    """Every pin carries a hash, so pip's --require-hashes (make venv, the image) accepts the file."""
    for lock in (BASE, DEV):
        entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2])
        unhashed = [entry.split()[0] for entry in entries if entry.strip() and "--hash=sha256:" not in entry]
        assert not unhashed, f"{lock.name}: {unhashed}"
