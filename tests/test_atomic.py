import os
import stat

import pytest
import safetensors.torch
import torch

from sg3pipe.io.atomic import atomic_path, plain_file_mode


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_failed_block_leaves_nothing_and_a_finished_one_leaves_the_file(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list((tmp_path / "out").iterdir()) == []
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".parquet" and tmp.parent == target.parent
        tmp.write_text("whole")
    assert target.read_text() == "whole" and [p.name for p in target.parent.iterdir()] == ["table.parquet"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_permissions_of_a_plain_new_file(tmp_path, umask):
    # safetensors creates its files as 0600: a model written through atomic_path gets what the umask allows.
    previous = os.umask(umask)
    try:
        assert plain_file_mode() == 0o666 & ~umask
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        model = tmp_path / "model.safetensors"
        with atomic_path(model) as tmp:
            safetensors.torch.save_file({"w": torch.zeros(2)}, tmp)
            written = _mode(tmp)
    finally:
        os.umask(previous)
    assert written == 0o600 or written == _mode(plain)  # what safetensors gives (0600 in the versions seen)
    assert _mode(model) == _mode(plain) == 0o666 & ~umask
