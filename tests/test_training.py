"""The training loops' shared schedule and checkpoints (sg3pipe.training)."""

from __future__ import annotations

import json

import pytest
import torch

from sg3pipe.training import cosine_lr, remove_checkpoint, resume, save_checkpoint


def test_cosine_lr_decays_from_lr_to_a_twentieth_and_stays():
    rates = [cosine_lr(step, 100, 1e-2) for step in range(0, 121, 10)]
    assert rates[0] == pytest.approx(1e-2) and rates[10] == pytest.approx(5e-4) and rates[-1] == rates[10]
    assert all(a > b for a, b in zip(rates[:10], rates[1:11], strict=True))
    assert cosine_lr(50, 100, 1e-2) == pytest.approx((1e-2 + 5e-4) / 2)


def test_checkpoint_round_trip_resumes_with_more_steps_but_not_another_config(tmp_path):
    config = {"steps": 10, "lr": 1e-3, "widths": (8, 16)}
    model, rng = torch.nn.Linear(3, 2), torch.Generator().manual_seed(5)
    assert resume(tmp_path, {"model": model}, rng, config) == (0, [])
    save_checkpoint(tmp_path, {"model": model}, rng, 4, [0.5, 0.25], config)
    assert json.loads((tmp_path / "losses.json").read_text()) == [0.5, 0.25]
    expected, drawn = model.state_dict(), torch.rand(3, generator=rng)
    restored, rng_restored = torch.nn.Linear(3, 2), torch.Generator()
    assert resume(tmp_path, {"model": restored}, rng_restored, {**config, "steps": 20, "widths": [8, 16]}) == (
        4,
        [0.5, 0.25],
    )
    torch.testing.assert_close(restored.state_dict(), expected)
    assert torch.equal(torch.rand(3, generator=rng_restored), drawn)
    with pytest.raises(ValueError, match="another config"):
        resume(tmp_path, {"model": restored}, rng_restored, {**config, "lr": 1e-2})


def test_remove_checkpoint_deletes_its_files_and_an_emptied_folder_only(tmp_path):
    parts = {"net": torch.nn.Linear(2, 2)}
    for folder in (tmp_path / "alone", tmp_path / "shared"):
        save_checkpoint(folder, parts, torch.Generator(), 1, [{"l2": 0.5}], {"lr": 0.1})
    (tmp_path / "shared" / "notes.txt").write_text("the user's")
    remove_checkpoint(tmp_path / "alone")
    remove_checkpoint(tmp_path / "shared")
    remove_checkpoint(tmp_path / "never")  # nothing there: nothing to do
    assert not (tmp_path / "alone").exists()
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["notes.txt"]
