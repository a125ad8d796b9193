"""The training loops' shared schedule and checkpoints (sg3pipe.training)."""

from __future__ import annotations

import json

import pytest
import torch

from sg3pipe.training import cosine_lr, load_checkpoint, save_checkpoint


def test_cosine_lr_decays_from_lr_to_a_twentieth_and_stays():
    rates = [cosine_lr(step, 100, 1e-2) for step in range(0, 121, 10)]
    assert rates[0] == pytest.approx(1e-2) and rates[10] == pytest.approx(5e-4) and rates[-1] == rates[10]
    assert all(a > b for a, b in zip(rates[:10], rates[1:11], strict=True))
    assert cosine_lr(50, 100, 1e-2) == pytest.approx((1e-2 + 5e-4) / 2)


def test_checkpoint_round_trip_resumes_with_more_steps_but_not_another_config(tmp_path):
    config = {"steps": 10, "lr": 1e-3, "widths": (8, 16)}
    assert load_checkpoint(tmp_path, config) is None
    state = {"weights": torch.arange(3.0), "step": 4, "losses": [0.5, 0.25], "config": config}
    save_checkpoint(tmp_path, state)
    assert json.loads((tmp_path / "losses.json").read_text()) == [0.5, 0.25]
    resumed = load_checkpoint(tmp_path, {**config, "steps": 20, "widths": [8, 16]})
    assert resumed["step"] == 4 and torch.equal(resumed["weights"], state["weights"])
    with pytest.raises(ValueError, match="another config"):
        load_checkpoint(tmp_path, {**config, "lr": 1e-2})
