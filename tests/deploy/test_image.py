"""deploy/Dockerfile builds in stages: the dependencies come from the lock alone, in a layer that a
code change does not touch, and the final image holds no dev or test package (read, not built: there
is no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = ("pyproject.toml", "boochat", "contracts", "gateway", "workers")


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined); the last stage is ``final``."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "deploy/Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    found: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("FROM "):
            match = re.search(r" AS (\S+)$", line)
            current = found.setdefault(match.group(1) if match else "final", [])
        current.append(line)
    return found


def copies_code(instruction: str) -> bool:
    return instruction.startswith("COPY ") and any(f" {name} " in instruction + " " for name in CODE)


def test_dependencies_are_installed_from_the_lock_before_any_code_is_copied() -> None:
    deps = stages()["deps"]
    assert not any(copies_code(instruction) for instruction in deps)
    assert any(i.startswith("COPY requirements/base.txt ") for i in deps)
    assert any(re.search(r"pip install --require-hashes -r \S*base\.txt$", i) for i in deps)


def test_the_code_is_a_wheel_installed_without_dependencies() -> None:
    found = stages()
    assert any(copies_code(i) for i in found["build"]) and any("pip wheel --no-deps" in i for i in found["build"])
    final = found["final"]
    assert "COPY --from=deps /opt/boochat /opt/boochat" in final
    [install] = [i for i in final if "pip install" in i]
    assert "from=build" in install and "--no-deps" in install
    # The dependency layer comes before the code's, so only the small last layer changes with the code.
    assert final.index("COPY --from=deps /opt/boochat /opt/boochat") < final.index(install)
    assert not any(copies_code(i) for i in final)


def test_no_dev_lock_or_extra_reaches_the_image() -> None:
    text = (ROOT / "deploy/Dockerfile").read_text()
    assert "dev.txt" not in text and "[dev]" not in text and "[local]" not in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "requirements" not in ignored and "requirements/base.txt" not in ignored
