"""Applying edits to W+ latents and flat styles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sg3pipe.editing.directions import projection_std
from sg3pipe.editing.edits import EditSpec, edit_latents, edit_styles, factor_in_raw_units

F, L, D, C = 7, 16, 32, 100


@pytest.fixture
def ws() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((F, L, D)).astype(np.float32)


@pytest.fixture
def normal() -> np.ndarray:
    n = np.random.default_rng(1).standard_normal((1, D))
    return (n / np.linalg.norm(n)).astype(np.float32)


def test_edit_latents_adds_the_normal_to_every_row_of_every_frame(ws, normal):
    edited = edit_latents(ws, normal, 2.5)
    assert edited.shape == ws.shape and edited.dtype == ws.dtype
    np.testing.assert_allclose(edited - ws, np.broadcast_to(2.5 * normal, ws.shape), atol=1e-6)
    np.testing.assert_array_equal(edit_latents(ws, normal, 0.0), ws)
    assert not np.shares_memory(edited, ws)


def test_edit_latents_rows_leave_the_other_rows_untouched(ws, normal):
    rows = [0, 3, 15]
    edited = edit_latents(ws, normal, -4.0, rows=rows)
    others = [r for r in range(L) if r not in rows]
    np.testing.assert_array_equal(edited[:, others], ws[:, others])
    np.testing.assert_allclose(edited[:, rows] - ws[:, rows], np.broadcast_to(-4.0 * normal, (F, 3, D)), atol=1e-6)
    with pytest.raises(ValueError, match=r"rows must be in \[0, 16\)"):
        edit_latents(ws, normal, 1.0, rows=[16])


def test_edit_latents_is_linear_in_the_factor(ws, normal):
    once = edit_latents(ws, normal, 1.5) - ws
    np.testing.assert_allclose(edit_latents(ws, normal, 3.0) - ws, 2 * once, atol=1e-5)
    np.testing.assert_allclose(
        edit_latents(edit_latents(ws, normal, 1.0), normal, 2.0), edit_latents(ws, normal, 3.0), atol=1e-6
    )


def test_edit_latents_keeps_torch_type_dtype_and_gradients(ws, normal):
    tensor = torch.from_numpy(ws).double().requires_grad_()
    edited = edit_latents(tensor, normal, 2.0, rows=[1])
    assert isinstance(edited, torch.Tensor) and edited.dtype == torch.float64
    np.testing.assert_allclose(edited.detach().numpy(), edit_latents(ws.astype(np.float64), normal, 2.0, rows=[1]))
    edited.sum().backward()
    assert torch.equal(tensor.grad, torch.ones_like(tensor))


def test_edit_latents_rejects_bad_shapes(ws, normal):
    with pytest.raises(ValueError, match=r"\[F, L, D\]"):
        edit_latents(ws[0], normal, 1.0)
    with pytest.raises(ValueError, match=r"\[1, 32\]"):
        edit_latents(ws, normal[0], 1.0)


def test_edit_styles_adds_the_scaled_delta():
    rng = np.random.default_rng(2)
    styles, delta = rng.standard_normal((F, C)).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    edited = edit_styles(styles, delta, 0.5)
    assert edited.shape == (F, C) and edited.dtype == np.float32
    np.testing.assert_allclose(edited - styles, np.broadcast_to(0.5 * delta, (F, C)), atol=1e-6)
    np.testing.assert_array_equal(edit_styles(styles, delta, 0.0), styles)
    np.testing.assert_allclose(edit_styles(styles, delta, -2.0) - styles, -4 * (edited - styles), atol=1e-5)
    torch.testing.assert_close(edit_styles(torch.from_numpy(styles), delta, 0.5), torch.from_numpy(edited))
    with pytest.raises(ValueError, match=r"delta must have shape \[100\]"):
        edit_styles(styles, delta[:-1], 1.0)


def test_a_factor_in_std_moves_the_projection_by_that_many_std(ws, normal):
    latents = np.random.default_rng(3).standard_normal((5000, D)) * 2
    std = projection_std(latents, normal)
    assert factor_in_raw_units(1.5, "raw", std) == 1.5
    raw = factor_in_raw_units(1.5, "std", std)
    assert raw == pytest.approx(1.5 * std)
    moved = (edit_latents(ws, normal, raw) - ws) @ normal[0]
    np.testing.assert_allclose(moved / std, 1.5, rtol=1e-5)
    with pytest.raises(ValueError, match="unit"):
        factor_in_raw_units(1.0, "sigma", std)
    with pytest.raises(ValueError, match="std must be positive"):
        factor_in_raw_units(1.0, "std", 0.0)


def test_edit_spec_validates_its_fields():
    spec = EditSpec(name="smile", direction="smiling", space="w", factors=[-2.0, 2.0], unit="std")
    assert spec.rows is None
    assert EditSpec("smile_coarse", "smiling", "w+", [3.0], rows=[0, 1, 2]).rows == [0, 1, 2]
    with pytest.raises(ValueError, match="space"):
        EditSpec("x", "smiling", "z", [1.0])
    with pytest.raises(ValueError, match="unit"):
        EditSpec("x", "smiling", "w", [1.0], unit="percent")
    with pytest.raises(ValueError, match="at least one factor"):
        EditSpec("x", "smiling", "w", [])
    with pytest.raises(ValueError, match="rows apply to space 'w\\+' only"):
        EditSpec("x", "smiling", "s", [1.0], rows=[0])
    with pytest.raises(ValueError, match="distinct"):
        EditSpec("x", "smiling", "w+", [1.0], rows=[1, 1])
