"""boochat.filestore's local backend: a slot is claimed once, files appear whole or not at all."""

from __future__ import annotations

import pytest

from boochat.filestore import LocalStore, Meta

UPLOAD = "0123456789abcdef0123456789abcdef"


def test_a_slot_is_claimed_once(tmp_path) -> None:
    store = LocalStore(tmp_path)
    assert store.begin(UPLOAD) and not store.begin(UPLOAD)


def test_a_file_appears_only_once_written_whole(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.begin(UPLOAD)
    with pytest.raises(RuntimeError), store.writer(UPLOAD, "original") as file:
        file.write(b"half")
        raise RuntimeError("the client went away")
    assert store.size(UPLOAD, "original") is None
    assert list(store.folder(UPLOAD).iterdir()) == []  # no temporary file left behind
    with store.writer(UPLOAD, "original") as file:
        file.write(b"whole")
    assert store.path(UPLOAD, "original").read_bytes() == b"whole"


def test_a_variant_is_written_once_unless_replaced(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.begin(UPLOAD)
    with store.writer(UPLOAD, "original") as file:
        file.write(b"first")
    with pytest.raises(FileExistsError), store.writer(UPLOAD, "original") as file:
        file.write(b"second")
    with store.writer(UPLOAD, "original", replace=True) as file:
        file.write(b"cleaned")
    assert store.path(UPLOAD, "original").read_bytes() == b"cleaned"


def test_clear_keeps_the_slot_used_and_delete_removes_everything(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.begin(UPLOAD)
    with store.writer(UPLOAD, "original") as file:
        file.write(b"x")
    store.write_meta(UPLOAD, Meta("image/png", "a.png"))
    assert store.meta(UPLOAD) == Meta("image/png", "a.png")
    store.clear(UPLOAD)
    assert store.meta(UPLOAD) is None and store.size(UPLOAD, "original") is None and not store.begin(UPLOAD)
    store.delete(UPLOAD)
    assert not store.folder(UPLOAD).exists()


@pytest.mark.parametrize("upload_id", ["../../etc", "0123456789abcdef0123456789ABCDEF", "", "a/b"])
def test_paths_are_made_of_upload_ids_only(tmp_path, upload_id: str) -> None:
    with pytest.raises(ValueError):
        LocalStore(tmp_path).folder(upload_id)
    with pytest.raises(ValueError):
        LocalStore(tmp_path).path(UPLOAD, "../x")
