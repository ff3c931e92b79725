"""The local blob store: a blob appears whole or not at all, keys cannot leave the root."""
from __future__ import annotations

import pytest

from pulse.storage.blobs import LocalBlobStore


def test_a_blob_appears_only_once_its_writer_closes(tmp_path):
    blobs = LocalBlobStore(tmp_path)
    with blobs.writer("exports/acme/a.csv") as out:
        out.write(b"half")
        assert not blobs.exists("exports/acme/a.csv")
        out.write(b" and half")
    assert blobs.exists("exports/acme/a.csv") and blobs.size("exports/acme/a.csv") == 13
    with blobs.open("exports/acme/a.csv") as f:
        assert f.read() == b"half and half"


def test_a_failed_write_leaves_nothing_and_keeps_the_previous_blob(tmp_path):
    blobs = LocalBlobStore(tmp_path)
    with blobs.writer("k.bin") as out:
        out.write(b"old")
    with pytest.raises(RuntimeError), blobs.writer("k.bin") as out:
        out.write(b"new")
        raise RuntimeError("boom")
    assert blobs.open("k.bin").read() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.bin"]


def test_two_writers_of_one_key_do_not_disturb_each_other_and_delete_clears_leftovers(tmp_path):
    blobs = LocalBlobStore(tmp_path)
    first = blobs.writer("k.bin")
    stale = first.__enter__()
    stale.write(b"stale")
    with blobs.writer("k.bin") as out:  # a second attempt while the first is still writing
        out.write(b"fresh")
    assert blobs.open("k.bin").read() == b"fresh"
    stale.close()  # the first writer dies without finishing: its unfinished file is left behind
    assert len(list(tmp_path.iterdir())) == 2
    assert blobs.delete("k.bin") and not blobs.exists("k.bin")
    assert list(tmp_path.iterdir()) == [] and not blobs.delete("k.bin")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../x", "a//b", ".hidden", "a/b c", "", "x.partial"])
def test_keys_that_could_leave_the_root_are_refused(tmp_path, key):
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).exists(key)
