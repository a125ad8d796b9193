"""Temporal smoothing of per-frame latents and transforms (the paper's step 6, without its defects).

The official code replaces the fine rows 9..15 of every latent by their mean over the video, then runs the
5-tap filter ``(0.25, 0.75, 1, 0.75, 0.25) / 3`` over time on the latents and, entry by entry, on the 3x3
transform matrices, keeping only the N - 4 positions where the whole filter fits. Here:

* **As many frames out as in, and a steady motion stays steady.** At frame t the output is the value at t of
  the straight line fitted by least squares to the usable frames within the filter's reach, each weighted by
  its tap (local linear regression). Where the whole filter fits, the line's value at its centre is the
  weighted mean, so away from the ends and from unusable frames this equals the official filter exactly (its
  taps sum to 1). Where taps are missing (the first and last frames, the frames next to a gap) a plain
  average of the taps that remain would be one-sided and lag behind a trend (a head turning at a steady rate
  would be pulled back at frame 0); the fitted line passes any linear trend through unchanged. Reflecting the
  series about its end value (``x[-k] = 2 x[0] - x[k]``) would too, but it returns frame 0 with all its noise
  (the line keeps 0.93 of its standard deviation with the 5 taps, 0.78 with a gaussian of 2 frames) and has
  no counterpart at a gap. A frame whose window holds no other usable frame keeps its value.
* **Unusable frames are bridged, not smoothed into their neighbours.** A frame without a usable latent
  contributes nothing (weight 0): its neighbours are smoothed from the usable frames only, so nothing
  leaks across a gap, and the unusable frame's own output stays NaN (rendering passes the source through).
* **Transforms are smoothed as parameters**, ``(angle, tx, ty, scale)`` with the angle unwrapped, and
  rebuilt as similarity matrices; averaging 3x3 matrices entry by entry gives matrices that are not
  rotations (they shrink the face where the angle changes).
* Filters: ``official`` (the 5 taps), ``gaussian`` (``sigma`` in frames, truncated at 4 sigma) or ``none``;
  scipy does the filtering.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import correlate1d

from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.temporal import jitter
from sg3pipe.settings import settings
from sg3pipe.tracks import track_rows
from sg3pipe.transforms import make_transform, transform_params

log = logging.getLogger(__name__)

# The smoothed transform columns and their shapes per row.
TRANSFORM_SHAPES = {"angle_deg": (), "tx": (), "ty": (), "scale": (), "transform": (3, 3)}
OFFICIAL_TAPS = (0.25, 0.75, 1.0, 0.75, 0.25)  # the paper's temporal filter, before its division by 3
FILTERS = ("official", "gaussian", "none")


@dataclass(frozen=True)
class SmoothingSettings:
    """How latents and transforms are smoothed (config key ``smooth``)."""

    filter: str = "official"  # official | gaussian | none
    sigma: float = 1.0  # frames; the gaussian filter's standard deviation
    fine_rows: tuple[int, int] | None = (9, 15)  # W+ rows (inclusive) replaced by their video mean; None: off
    transforms: bool = True  # also smooth the transforms

    def __post_init__(self):
        if self.filter not in FILTERS:
            raise ValueError(f"smooth.filter is {self.filter!r}; use one of {FILTERS}")
        if self.filter == "gaussian" and not self.sigma > 0:
            raise ValueError(f"smooth.sigma is {self.sigma}; a gaussian filter needs sigma > 0 frames")
        if self.fine_rows is not None:
            start, stop = self.fine_rows
            if not 0 <= start <= stop:
                raise ValueError(f"smooth.fine_rows is {list(self.fine_rows)}; give [first, last] with first <= last")


def smoothing_settings(config: dict | None) -> SmoothingSettings:
    """Settings from the ``smooth`` config dict (missing keys keep their defaults, unknown keys are an error)."""
    return settings(SmoothingSettings, config)


def filter_taps(settings: SmoothingSettings) -> np.ndarray:
    """The filter's taps ``[2r + 1]`` (not normalised; :func:`smooth_series` normalises per frame)."""
    if settings.filter == "official":
        return np.asarray(OFFICIAL_TAPS)
    if settings.filter == "gaussian":
        radius = max(1, int(np.ceil(4 * settings.sigma)))
        offsets = np.arange(-radius, radius + 1)
        return np.exp(-0.5 * (offsets / settings.sigma) ** 2)
    return np.ones(1)


def smooth_series(values: np.ndarray, usable: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Local linear regression of ``values [N, ...]`` along frames, weighted by the filter's taps (module
    docstring): a linear trend passes through unchanged, also at the ends and next to unusable frames.

    With weights ``w = tap * usable`` at offsets ``d`` (frames) and the sums ``S_j = sum w d^j``,
    ``T_j = sum w d^j x``, the output at a frame is ``(S2 T0 - S1 T1) / (S0 S2 - S1^2)``; it is ``T0 / S0``
    where the frame is the only usable one in reach (``S2 = 0``). Where every tap is present ``S1 = 0`` and
    this is the normalised filter ``T0 / S0``.

    Args:
        values: per-frame values; rows where ``usable`` is false are ignored (may be NaN).
        usable: ``[N]`` bool.
        taps: ``[2r + 1]`` filter taps, symmetric, the centre one positive.

    Returns:
        ``[N, ...]`` float64; NaN on the rows that are not usable.
    """
    values = np.asarray(values, dtype=np.float64)
    usable = np.asarray(usable, dtype=bool)
    taps = np.asarray(taps, dtype=np.float64)
    weight = usable.astype(np.float64)
    flat = np.where(usable.reshape((-1,) + (1,) * (values.ndim - 1)), values, 0.0).reshape(len(values), -1)
    offsets = np.arange(len(taps)) - len(taps) // 2
    s0, s1, s2 = (correlate1d(weight, taps * offsets**j, mode="constant") for j in range(3))
    t0, t1 = (correlate1d(flat, taps * offsets**j, axis=0, mode="constant") for j in range(2))
    line = s2 > 0  # another usable frame in reach; then S0 S2 - S1^2 >= tap0 S2 > 0 (the frame's own tap)
    determinant = np.where(usable, np.where(line, s0 * s2 - s1**2, s0), 1.0)
    a, b = np.where(line, s2, 1.0) / determinant, np.where(line, -s1, 0.0) / determinant  # out = a T0 + b T1
    out = a[:, None] * t0 + b[:, None] * t1
    out[~usable] = np.nan
    return out.reshape(values.shape)


def average_fine_rows(ws: np.ndarray, usable: np.ndarray, rows: tuple[int, int] | None) -> np.ndarray:
    """``ws [N, ..., num_ws, w_dim]`` with rows ``rows[0]..rows[1]`` (inclusive, clipped to num_ws) of every
    usable frame replaced by their mean over the usable frames (the paper's fine-layer averaging)."""
    ws = np.array(ws, dtype=np.float64)
    if rows is None or not usable.any():
        return ws
    fine = slice(rows[0], rows[1] + 1)
    ws[usable, ..., fine, :] = ws[usable, ..., fine, :].mean(axis=0, keepdims=True)
    return ws


def smooth_latents(
    ws: np.ndarray, usable: np.ndarray, settings: SmoothingSettings, tracks: np.ndarray | None = None
) -> np.ndarray:
    """Fine-row averaging, then the temporal filter: ``ws [N, ..., num_ws, w_dim]`` (W+ ``[N, num_ws, w_dim]``
    or several edit factors ``[N, K, num_ws, w_dim]``) -> float32 of the same shape, NaN on unusable rows.

    ``tracks`` ``[N]`` (a table's ``track`` column, sg3pipe.tracks): each track is a time series of its own,
    averaged and filtered apart from the others. None: one track.

    Edits in W and S add the same vector to every frame, and both steps are linear with weights summing to
    one, so smoothing an edited video equals editing the smoothed one: the order of the paper (edit first)
    and the reverse give the same latents. StyleSpace arrays ``[N, K, C]`` go through :func:`smooth_series`.
    """
    usable = np.asarray(usable, dtype=bool)
    out = np.empty(np.shape(ws), dtype=np.float32)
    for rows in track_rows(np.zeros(len(usable)) if tracks is None else tracks):
        fine = average_fine_rows(np.asarray(ws)[rows], usable[rows], settings.fine_rows)
        out[rows] = smooth_series(fine, usable[rows], filter_taps(settings))
    return out


def transform_series(transforms: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The parameters ``[N, 4]`` (angle in degrees, tx, ty, scale) of similarity matrices ``[N, 3, 3]``, the
    angle unwrapped over the usable frames (a turn through +-180 degrees stays continuous); NaN on unusable rows."""
    params = np.full((len(transforms), 4), np.nan)
    if usable.any():
        angle, tx, ty, scale = transform_params(np.asarray(transforms, dtype=np.float64)[usable])
        params[usable] = np.stack([np.unwrap(angle, period=360.0), tx, ty, scale], axis=1)
    return params


def smooth_transforms(transforms: np.ndarray, usable: np.ndarray, settings: SmoothingSettings) -> dict[str, np.ndarray]:
    """Smooth similarity matrices ``[N, 3, 3]`` through their parameters (:func:`transform_series`).

    Returns:
        ``{"angle_deg", "tx", "ty", "scale": [N] float64, "transform": [N, 3, 3]}``: the smoothed parameters
        (the angle unwrapped before filtering, so a turn through +-180 degrees does not average to 0) and the
        matrices rebuilt with :func:`sg3pipe.transforms.make_transform`; NaN on unusable rows. With
        ``transforms=False`` settings, the parameters of the input.
    """
    usable = np.asarray(usable, dtype=bool)
    taps = filter_taps(settings) if settings.transforms else np.ones(1)
    angle, tx, ty, scale = smooth_series(transform_series(transforms, usable), usable, taps).T
    matrices = np.full((len(usable), 3, 3), np.nan)
    if usable.any():
        matrices[usable] = make_transform(angle[usable], tx[usable], ty[usable], scale[usable])
    return {"angle_deg": angle, "tx": tx, "ty": ty, "scale": scale, "transform": matrices}


def smooth_video(
    frames_path: str | os.PathLike,
    latents_path: str | os.PathLike,
    out_path: str | os.PathLike,
    settings: SmoothingSettings,
    provenance: dict | None = None,
) -> dict:
    """Write ``smoothed.parquet`` of a video: one row per row of ``latents.parquet``.

    Columns: ``frame``, ``track``, ``status``, ``usable`` (the frame was inverted), ``latent [num_ws, w_dim]``
    (fine rows averaged, then filtered), ``angle_deg``, ``tx``, ``ty``, ``scale`` and ``transform [3, 3]`` (smoothed
    parameters and the similarity rebuilt from them); NaN on unusable rows. Edits are not stored: they commute
    with smoothing (:func:`smooth_latents`), so the renderer applies each edit to these latents.

    Returns:
        The metadata: settings, shapes, and ``jitter``, per track (a list, track 0 first): the jitter
        (:func:`sg3pipe.metrics.temporal.jitter`) of the latents and of each transform parameter before and
        after smoothing. Each track is smoothed on its own.
    """
    latents, latents_meta = read_table(latents_path)
    frames, _ = read_table(frames_path)
    if len(frames) != len(latents) or (frames["frame"].to_numpy() != latents["frame"].to_numpy()).any():
        raise ValueError(
            f"{latents_path} and {frames_path} list different frames; rerun the encode rule for this video"
        )
    shape = tuple(latents_meta["shapes"]["latent"])
    ws = column_array(latents, "latent", shape)
    usable = latents["inverted"].to_numpy().astype(bool)
    transforms = column_array(frames, "transform", (3, 3)).astype(np.float64)
    tracks = latents["track"].to_numpy()
    smoothed_ws = smooth_latents(ws, usable, settings, tracks)
    smoothed = {name: np.full((len(usable), *shape), np.nan) for name, shape in TRANSFORM_SHAPES.items()}
    jitters = []  # one record per track
    for rows in track_rows(tracks):
        use = usable[rows]
        track_smoothed = smooth_transforms(transforms[rows], use, settings)
        raw = dict(zip(("angle_deg", "tx", "ty", "scale"), transform_series(transforms[rows], use).T, strict=True))
        record = {"latent": {"before": jitter(ws[rows], use), "after": jitter(smoothed_ws[rows], use)}}
        for name, values in raw.items():
            record[name] = {"before": jitter(values, use), "after": jitter(track_smoothed[name], use)}
            smoothed[name][rows] = track_smoothed[name]
        smoothed["transform"][rows] = track_smoothed["transform"]
        jitters.append(record)
    columns = {
        "frame": latents["frame"].to_numpy(),
        "track": tracks,
        "status": latents["status"].to_numpy(),
        "usable": usable,
        "latent": smoothed_ws,
        **smoothed,
    }
    metadata = {
        "provenance": provenance or {},
        "smooth": asdict(settings),
        "shapes": {"latent": list(shape), "transform": [3, 3]},
        "jitter": jitters,
    }
    write_table(out_path, columns, metadata)
    log.info("smoothed %d of %d frames; latent jitter %.4f -> %.4f (track 0)", usable.sum(), len(usable),
             jitters[0]["latent"]["before"], jitters[0]["latent"]["after"])  # fmt: skip
    return metadata
