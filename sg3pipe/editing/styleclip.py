"""StyleCLIP global directions in StyleSpace (Patashnik et al. 2021, arXiv:2103.17249): text-driven edits.

1. For each StyleSpace channel ``c`` (the flat layout of :func:`~sg3pipe.editing.directions.flatten_styles`),
   move it alone by ``+alpha`` and ``-alpha`` of its standard deviation on a few sampled codes, render both and
   embed them with CLIP's image encoder: the channel's image direction ``delta_i_c`` is the mean over samples of
   the normalised embedding difference, normalised (:func:`channel_image_directions`, the costly part: two
   renders per channel and sample).
2. For a text pair (neutral, target), ``delta_t`` is the normalised difference of their normalised CLIP text
   embeddings (:func:`text_direction`).
3. Relevance ``r_c = delta_i_c . delta_t``; channels with ``|r_c| < beta`` are zeroed, the rest scaled so that
   ``max |r| = 1`` and multiplied by the channel's std (:func:`global_direction`); the edit is
   ``s + alpha * delta``, like the StyleSpace directions of :func:`~sg3pipe.editing.directions.style_direction`.

The steps follow yuval-alaluf/stylegan3-editing ``editing/styleclip_global_directions/``
(``preprocess/s_statistics.py``, ``preprocess/create_delta_i_c.py``, ``global_direction.py``).

CLIP is an optional dependency: :func:`load_clip` reads OpenAI's weight file (``ViT-B-32.pt`` and the like) with
the ``clip`` package and fails with one clear message when either is missing; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sg3pipe.editing.directions import StyleDirection
from sg3pipe.editing.sampling import pseudo_aligned
from sg3pipe.networks.stylespace import render_flat_styles

CLIP_SIZE = 224  # input side of OpenAI's CLIP image encoders
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipModel:
    """OpenAI CLIP behind two calls: :meth:`encode_images` (generator images ``[N, 3, R, R]`` in [-1, 1] ->
    ``[N, D]``) and :meth:`encode_texts` (sentences -> ``[len, D]``); embeddings are not normalised."""

    def __init__(self, model, tokenize: Callable, device: str | torch.device = "cpu"):
        self.model, self.tokenize, self.device = model.eval(), tokenize, torch.device(device)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((images.float() + 1) / 2, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        return self.model.encode_image(((x.clamp(0, 1) - mean) / std).to(self.device)).float()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenize(texts).to(self.device)).float()


def load_clip(path: str | os.PathLike, device: str | torch.device = "cpu") -> ClipModel:
    """OpenAI's CLIP from a local weight file (``directions.styleclip.clip`` in the config).

    Raises:
        FileNotFoundError: the file is missing.
        ImportError: the optional ``clip`` package is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CLIP weights {path} not found: StyleCLIP directions need OpenAI's CLIP file (e.g. ViT-B-32.pt); set "
            "directions.styleclip.clip to its path, or directions.styleclip to null to skip them"
        )
    clip = import_clip()
    model, _ = clip.load(str(path), device=device, jit=False)
    return ClipModel(model, clip.tokenize, device)


def import_clip() -> types.ModuleType:
    """OpenAI's ``clip`` package (``clip-anytorch`` on PyPI).

    Raises:
        ImportError: it is not installed (the message says how to install it or switch StyleCLIP off).
    """
    try:
        with _pkg_resources_for_clip():
            import clip
    except ImportError as error:
        raise ImportError(
            "StyleCLIP directions need OpenAI's `clip` package to read CLIP weights and tokenise the texts: install "
            f"it (`pip install clip-anytorch`, or OpenAI's CLIP repository), or set directions.styleclip to null "
            f"({error})"
        ) from error
    return clip


@contextlib.contextmanager
def _pkg_resources_for_clip() -> Iterator[None]:
    """While ``clip`` is imported, a stand-in for setuptools' ``pkg_resources`` where there is none.

    clip-anytorch 2.6 (PyPI's CLIP) does ``from pkg_resources import packaging`` only to compare version
    strings, and setuptools 81 and later no longer ship ``pkg_resources``: the import would fail on a current
    environment. The stand-in offers that one name and is removed again, so nothing else ever sees it.
    """
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        yield
        return
    import packaging.version

    stand_in = types.ModuleType("pkg_resources")
    stand_in.packaging = packaging
    sys.modules["pkg_resources"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def channel_image_directions(
    G,
    ws: torch.Tensor,
    styles_flat: torch.Tensor,
    std: np.ndarray,
    encode_images: Callable[[torch.Tensor], torch.Tensor],
    alpha: float = 5.0,
    batch: int = 32,
    pseudo_align: bool = True,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """Each StyleSpace channel's CLIP image direction ``delta_i_c`` (step 1 of the module docstring).

    Args:
        G: the generator.
        ws: ``[N, num_ws, w_dim]`` latents of the samples (row 0 sets the input layer's transform).
        styles_flat: ``[N, C]`` their flat StyleSpace codes.
        std: ``[C]`` each channel's std over many samples; channels with std 0 get a zero direction.
        encode_images: images ``[B, 3, R, R]`` in [-1, 1] -> embeddings ``[B, D]``.
        alpha: the move, in channel stds (StyleCLIP: 5).
        batch: renders per call of ``G`` (each holds a ``+alpha`` and a ``-alpha`` image of one pair).
        pseudo_align: render with ``w[:, 0] = w_avg``, as for direction finding.
        channels: indices of the channels to compute (None: all); the others get zero rows.

    Returns:
        ``[C, D]`` float32, unit rows (zero rows for constant and skipped channels).
    """
    n, n_channels = styles_flat.shape
    ws = pseudo_aligned(G, ws, pseudo_align)
    std = torch.as_tensor(np.asarray(std), dtype=styles_flat.dtype, device=styles_flat.device)
    wanted = range(n_channels) if channels is None else np.asarray(channels).tolist()
    pairs = [(c, i) for c in wanted if std[c] > 0 for i in range(n)]  # channel-major
    half = max(1, batch // 2)
    sums: dict[int, torch.Tensor] = {}
    for start in range(0, len(pairs), half):
        chunk = pairs[start : start + half]
        moved = torch.tensor([c for c, _ in chunk], device=styles_flat.device)
        samples = torch.tensor([i for _, i in chunk], device=styles_flat.device)
        step = torch.zeros(len(chunk), n_channels, dtype=styles_flat.dtype, device=styles_flat.device)
        step[torch.arange(len(chunk)), moved] = alpha * std[moved]
        codes = torch.cat([styles_flat[samples] + step, styles_flat[samples] - step])
        embeddings = encode_images(render_flat_styles(G, torch.cat([ws[samples], ws[samples]]), codes))
        differences = _unit(embeddings[: len(chunk)] - embeddings[len(chunk) :])
        for c, difference in zip(moved.tolist(), differences, strict=True):
            sums[c] = sums.get(c, 0) + difference
    dim = next(iter(sums.values())).shape[0] if sums else 0
    out = np.zeros((n_channels, dim), dtype=np.float32)
    for c, total in sums.items():
        out[c] = _unit(total).cpu().numpy()  # the unit mean over samples: the sum's direction
    return out


def text_direction(encode_texts: Callable[[list[str]], torch.Tensor], neutral: str, target: str) -> np.ndarray:
    """``delta_t`` ``[D]``: the unit difference of the unit text embeddings of ``target`` and ``neutral``."""
    neutral_embedding, target_embedding = _unit(encode_texts([neutral, target]))
    return _unit(target_embedding - neutral_embedding).cpu().numpy().astype(np.float32)


def global_direction(channel_directions: np.ndarray, text: np.ndarray, std: np.ndarray, beta: float) -> StyleDirection:
    """A StyleSpace direction from channel image directions ``[C, D]`` and a text direction ``[D]`` (step 3).

    ``beta`` is the disentanglement threshold on ``|r_c|`` (StyleCLIP's 0.08-0.15 for CLIP ViT-B/32 on FFHQ).
    Returns a :class:`~sg3pipe.editing.directions.StyleDirection`: ``delta`` ``[C]`` (``r_c / max|r| * std_c``
    on the kept channels), the kept ``channels`` by decreasing ``|r_c|`` and their ``relevance``.

    Raises:
        ValueError: no channel reaches ``beta``, or the shapes disagree.
    """
    channel_directions, text = np.asarray(channel_directions, np.float64), np.asarray(text, np.float64)
    std = np.asarray(std, np.float64)
    if (
        channel_directions.ndim != 2
        or text.shape != (channel_directions.shape[1],)
        or std.shape != (len(channel_directions),)
    ):
        raise ValueError(
            f"expected channel directions [C, D], a text direction [D] and std [C], got "
            f"{list(channel_directions.shape)}, {list(text.shape)} and {list(std.shape)}"
        )
    relevance = channel_directions @ text
    channels = np.flatnonzero(np.abs(relevance) >= beta)
    if len(channels) == 0:
        raise ValueError(f"no channel reaches beta {beta} (largest |r| {np.abs(relevance).max():.3f}): lower beta")
    channels = channels[np.argsort(-np.abs(relevance[channels]), kind="stable")]
    delta = np.zeros(len(std), dtype=np.float32)
    delta[channels] = relevance[channels] / np.abs(relevance[channels[0]]) * std[channels]
    return StyleDirection(
        delta=delta, channels=channels.astype(np.int64), relevance=relevance[channels].astype(np.float32)
    )


@dataclass(frozen=True)
class StyleClipSettings:
    """Text-driven StyleSpace directions (config ``directions.styleclip``; null: none)."""

    clip: str  # OpenAI's CLIP weight file (ViT-B-32.pt, ...)
    texts: dict[str, list[str]]  # direction name -> [neutral text, target text], e.g. smile: [a face, a smiling face]
    beta: float = 0.1  # relevance threshold (StyleCLIP: 0.08-0.15)
    alpha: float = 5.0  # channel move of step 1, in channel stds
    samples: int = 8  # sampled codes per channel in step 1 (the first ones of direction finding's samples)
    batch: int = 32  # renders per call of the generator


def styleclip_directions(
    G, clip: ClipModel, arrays: dict[str, np.ndarray], settings: StyleClipSettings, pseudo_align: bool = True
) -> dict[str, StyleDirection]:
    """One global direction per text pair of ``settings.texts``, from direction finding's samples ``arrays``
    (``w [N, w_dim]``, ``s [N, C]``: the channel stds over all ``N``, step 1 on the first ``settings.samples``)."""
    for name, pair in settings.texts.items():
        if len(pair) != 2:
            raise ValueError(f"directions.styleclip.texts.{name} must be [neutral text, target text], got {pair}")
    device = G.mapping.w_avg.device
    n = min(settings.samples, len(arrays["w"]))
    ws = torch.from_numpy(np.asarray(arrays["w"][:n], np.float32)).to(device)[:, None].repeat(1, G.num_ws, 1)
    flat = torch.from_numpy(np.asarray(arrays["s"][:n], np.float32)).to(device)
    std = np.asarray(arrays["s"], np.float64).std(axis=0)
    images = channel_image_directions(
        G, ws, flat, std, clip.encode_images, settings.alpha, settings.batch, pseudo_align
    )
    return {
        name: global_direction(images, text_direction(clip.encode_texts, *pair), std, settings.beta)
        for name, pair in settings.texts.items()
    }
