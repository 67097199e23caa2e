"""boochat.datadir: the data folder's lock, its generated session secret, the running stack's URL."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from boochat.datadir import MIN_SECRET_BYTES, DataDir, DataDirError


def test_claim_creates_the_folder_and_a_second_claim_is_refused(tmp_path: Path) -> None:
    folder = DataDir.at(tmp_path / "nested" / "data")
    with folder.claim():
        assert folder.path.is_dir() and folder.in_use()
        with pytest.raises(DataDirError, match="in use by another boochat up"):
            folder.claim()
    assert not folder.in_use()
    folder.claim().release()  # free again


def test_the_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process of the stack, whatever its working directory, means the same folder."""
    monkeypatch.chdir(tmp_path)
    assert DataDir.at(Path("data")).path == tmp_path / "data"


def test_the_session_secret_is_made_once_private_and_different_per_folder(tmp_path: Path) -> None:
    secrets = []
    for name in ("one", "two"):
        folder = DataDir.at(tmp_path / name)
        assert folder.session_secret() is None
        with folder.claim() as claim:
            secret, made = claim.session_secret()
            assert made and len(secret.encode()) >= MIN_SECRET_BYTES
            assert claim.session_secret() == (secret, False)  # kept, not made again
        path = folder.path / "session-secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert folder.session_secret() == secret  # readable without the lock (boochat token)
        secrets.append(secret)
    assert secrets[0] != secrets[1]


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    folder = DataDir.at(tmp_path)
    with folder.claim() as claim:
        claim.session_secret()
    (folder.path / "session-secret").chmod(0o644)
    with pytest.raises(DataDirError, match="can be read by others .mode 0644.: chmod 600 it"):
        folder.session_secret()


def test_the_stack_url_is_offered_only_while_the_folder_is_held(tmp_path: Path) -> None:
    folder = DataDir.at(tmp_path)
    with pytest.raises(DataDirError, match="no boochat up is running on"):
        folder.mongo_url()
    with folder.claim() as claim:
        with pytest.raises(DataDirError, match="no Mongo stand-in to offer"):
            folder.mongo_url()
        claim.advertise("mongodb://127.0.0.1:1234")
        assert folder.mongo_url() == "mongodb://127.0.0.1:1234"
    assert not (folder.run / "mongo-url").exists()
    with pytest.raises(DataDirError, match="no boochat up is running on"):
        folder.mongo_url()


def test_a_url_left_by_a_run_that_died_is_not_offered(tmp_path: Path) -> None:
    """A killed ``boochat up`` leaves its URL behind; the lock, gone with it, says it is stale."""
    folder = DataDir.at(tmp_path)
    claim = folder.claim()
    claim.advertise("mongodb://127.0.0.1:1234")
    os.close(claim.fd)  # what the OS does when the process dies
    with pytest.raises(DataDirError, match="no boochat up is running on"):
        folder.mongo_url()
    with folder.claim():  # the next start clears it
        with pytest.raises(DataDirError, match="no Mongo stand-in to offer"):
            folder.mongo_url()


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match="cannot use .*/file/data as the data folder"):
        DataDir.at(tmp_path / "file" / "data").claim()
