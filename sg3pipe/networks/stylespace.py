"""StyleSpace of a StyleGAN3 generator: the per-layer styles of ``G.synthesis.styles(ws)`` as one flat vector per
sample, and rendering from such vectors (what StyleSpace edits move)."""

from __future__ import annotations

import numpy as np
import torch

INPUT_STYLE = "input"  # the StyleSpace entry that is the input layer's normalised affine t, not channel styles


def flatten_styles(styles: dict[str, torch.Tensor | np.ndarray]) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Concatenate the per-layer styles of ``G.synthesis.styles(ws)`` into one StyleSpace vector per sample.

    The ``'input'`` entry (the input layer's normalised affine ``t`` [N, 4], a rotation and translation rather
    than channel styles) is left out, so directions never move it; keep it from the original dict and pass it
    to :func:`unflatten_styles` to render.

    Args:
        styles: ``{"input": [N, 4], layer name: [N, in_channels], ...}`` in synthesis order.

    Returns:
        ``(flat, layout)``: ``flat`` ``[N, C]`` float32 with the layers in the dict's order (ToRGB included;
        ``C = 9,890`` for R-1024: its 9,894 style channels less the 4 of ``'input'``), and ``layout``, the list
        of ``(layer name, width)`` that :func:`unflatten_styles` takes.
    """
    layout, parts = [], []
    for name, value in styles.items():
        if name == INPUT_STYLE:
            continue
        value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if value.ndim != 2:
            raise ValueError(f"style {name!r} must have shape [N, channels], got {list(value.shape)}")
        layout.append((name, value.shape[1]))
        parts.append(value.astype(np.float32))
    if not parts:
        raise ValueError("styles holds no layer styles")
    return np.concatenate(parts, axis=1), layout


def flat_styles_of(G, ws: np.ndarray, rows: np.ndarray, batch: int = 64) -> np.ndarray:
    """Flat StyleSpace codes (:func:`flatten_styles` layout) of the latents ``ws [N, num_ws, w_dim]`` on
    ``rows`` (indices), ``batch`` at a time on ``G``'s device.

    Returns:
        ``[N, C]`` float32, NaN on the rows not listed.
    """
    channels = sum(getattr(G.synthesis, name).in_channels for name in G.synthesis.layer_names)
    flat = np.full((len(ws), channels), np.nan, dtype=np.float32)
    device = G.mapping.w_avg.device
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            flat[part] = flatten_styles(G.synthesis.styles(torch.from_numpy(ws[part]).to(device)))[0]
    return flat


def unflatten_styles(
    flat: np.ndarray | torch.Tensor, layout: list[tuple[str, int]], input_style: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Split a flat StyleSpace ``[N, C]`` back into per-layer styles (the inverse of :func:`flatten_styles`).

    Args:
        flat: ``[N, C]`` with ``C`` the sum of the widths in ``layout``.
        layout: ``(layer name, width)`` pairs from :func:`flatten_styles`.
        input_style: the ``'input'`` entry ``[N, 4]`` to put first, so that the dict renders with
            ``G.synthesis(styles=...)``; ``None`` leaves it out.

    Returns:
        ``{("input",) layer name: [N, width]}`` float32 tensors, views of ``flat`` where its dtype allows.
    """
    flat = torch.as_tensor(flat, dtype=torch.float32)
    widths = [width for _, width in layout]
    if flat.ndim != 2 or flat.shape[1] != sum(widths):
        raise ValueError(f"flat must have shape [N, {sum(widths)}] for this layout, got {list(flat.shape)}")
    styles = {} if input_style is None else {INPUT_STYLE: input_style}
    for (name, _), part in zip(layout, torch.split(flat, widths, dim=1), strict=True):
        styles[name] = part
    return styles


def render_flat_styles(
    G, ws: torch.Tensor, styles_flat: torch.Tensor, transform: torch.Tensor | None = None
) -> torch.Tensor:
    """Images ``[N, 3, R, R]`` rendered from flat StyleSpace codes ``styles_flat [N, C]`` (:func:`flatten_styles`
    layout of ``G``), the input layer's entry taken from ``ws [N, num_ws, w_dim]`` (its row 0)."""
    base = G.synthesis.styles(ws)
    layout = [(name, base[name].shape[1]) for name in G.synthesis.layer_names]
    return G.synthesis(styles=unflatten_styles(styles_flat, layout, base[INPUT_STYLE]), transform=transform)
