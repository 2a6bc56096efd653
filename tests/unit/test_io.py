import json

import pytest

from a2v.errors import InputError, require_file
from a2v.io import atomic_path, write_json_atomic


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".bin" and tmp.parent == target.parent
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"abc"  # old content untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no temporary left


def test_write_json_atomic(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": 1}


def test_require_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        require_file(tmp_path / "nope.wav", "audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        require_file(tmp_path / "empty.wav", "audio")
    with pytest.raises(InputError, match="directory"):
        require_file(tmp_path, "audio")


def test_atomic_output_gets_umask_mode_not_private(tmp_path):
    import os
    import stat

    from a2v.io import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
