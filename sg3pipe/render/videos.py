"""Render every video of a source video, with its per-frame metrics, in one batched pass over the frames.

Outputs in ``out_dir`` (``results/{video}/videos/``), each with exactly as many frames as the source clip, at
its rate, with its audio (from the clip's first frame, as long as the frames) when it has one:

* ``{variant}.mp4`` for each variant of :mod:`sg3pipe.render.variants` (crop-sized: the unaligned crop window);
* ``fov.mp4``: the PTI reconstruction on a canvas enlarged by ``fov_pad`` (:func:`sg3pipe.render.fov.expand_fov`);
* ``side_by_side.mp4``: source crop | PTI reconstruction | every edit, in sync frame by frame;
* ``pasteback-{edit}-{factor}.mp4``: each edit warped back into the full source frame under a feathered face
  mask (:mod:`sg3pipe.render.pasteback`), at the source size. The mask is the landmarks' face hull or, with a
  face parser (:mod:`sg3pipe.render.face_parsing`), the parsed face of the source crop and of the edit together.
  With ``stitching_steps`` the pasted edit is first stitched (:mod:`sg3pipe.render.stitching`).

A still image (png/jpg) in the manifest is a one-frame video: each of these also gets its frame as ``{name}.png``
(the edited photo pasted back is ``pasteback-{edit}-{factor}.png``).

Frames that are not usable are passed through: the source crop in crop-sized videos (centred on a black
canvas in ``fov``), the source frame in paste-back videos.

Per-frame metrics (:func:`render_video`'s table, ``metrics.parquet``): for each variant, ``l2.{variant}``
(MSE in [-1, 1] units of the transformed render against the source crop), ``lpips.{variant}`` when an LPIPS
module is given, and ``identity.{variant}`` (dlib cosine similarity of the render to the source crop, each face
chip cut through its own crop transform: the variant's and the frame's) when an identity model is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sg3pipe.faces.alignment import quad_side
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.identity import descriptor_cosine
from sg3pipe.metrics.temporal import identity_consistency
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import to_tensor, to_uint8
from sg3pipe.render.face_parsing import FaceParser, region_mask
from sg3pipe.render.fov import expand_fov
from sg3pipe.render.names import pasteback_name
from sg3pipe.render.pasteback import face_mask, frame_to_crop, paste_back
from sg3pipe.render.stitching import stitch
from sg3pipe.render.variants import Variant, base_variants, edit_variants, render_images
from sg3pipe.settings import settings
from sg3pipe.temporal import SmoothingSettings
from sg3pipe.tracks import track_name, track_rows
from sg3pipe.video.decode import read_frames
from sg3pipe.video.probe import probe_video
from sg3pipe.video.writer import VideoSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderSettings:
    """How videos are rendered (config key ``render``)."""

    batch: int = 16  # frames rendered at once
    fov_pad: tuple[int, int, int, int] = (16, 16, 0, 0)  # fov.mp4: extra output pixels left, right, top, bottom
    pasteback: bool = True  # write pasteback-{edit}-{factor}.mp4
    mask_dilate: float = 0.02  # face mask dilation, in crop widths
    mask_feather: float = 0.06  # face mask feathering, in crop widths
    face_parser: dict | None = None  # sg3pipe.render.face_parsing.FaceParserSpec fields; None: landmark masks
    stitching_steps: int = 0  # STIT's stitching tuning before paste-back, Adam steps per batch (0: off)
    stitching_lr: float = 3e-4


def render_settings(config: dict | None) -> RenderSettings:
    """Settings from the ``render`` config dict (missing keys keep their defaults, unknown keys are an error)."""
    return settings(RenderSettings, config)


STILL_SUFFIXES = (".png", ".jpg", ".jpeg")  # sources that are still images: their edits are written as images too


@dataclass
class SourceClip:
    """Where a video's pixels come from: the frames stage's ``crops.mkv``, and the source
    video with the clip options the frames stage decoded it with (``start_s``, ``end_s``, ``max_frames``, ``fps``)."""

    crops: str | os.PathLike
    video: str | os.PathLike
    clip: dict
    fps: float
    has_audio: bool = False
    still: bool = False  # a still image (png/jpg): every video also gets its one frame as {name}.png


def _batches(source: SourceClip, batch: int, tracks: int, pasteback: bool) -> Iterator[tuple[np.ndarray, ...]]:
    """``(crops, frames or None)`` uint8 batches of the clip, in step: ``batch`` source frames and their
    ``batch * tracks`` crops (frame-major, sg3pipe.tracks)."""
    frames = read_frames(source.video, **source.clip, fps=source.fps, batch_size=batch) if pasteback else None
    for crop_batch in read_frames(source.crops, batch_size=batch * tracks):
        frame_batch = next(frames).images if frames is not None else None
        yield crop_batch.images, frame_batch


def _fill(rendered: np.ndarray, usable: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The source images with the usable rows replaced by ``rendered`` (one row per usable frame)."""
    out = source.copy()
    out[usable] = rendered
    return out


def _paste(frames: np.ndarray, usable: np.ndarray, edited: np.ndarray, crop_quad: np.ndarray, masks) -> np.ndarray:
    """A batch of source frames ``[B, H, W, 3]`` with the ``edited`` crops pasted into its ``usable`` ones: when
    all are usable (most batches), without copies of the full frames besides paste_back's output."""
    if usable.all():
        return paste_back(frames, edited, crop_quad, masks)
    out = frames.copy()
    out[usable] = paste_back(frames[usable], edited, crop_quad, masks)
    return out


def _paste_order(sizes: np.ndarray) -> np.ndarray:
    """The order in which a batch's tracks are pasted, from their face sizes ``[B, T]`` (NaN: absent): smallest
    mean size first, so that where two faces overlap the nearer (larger) one is pasted last and wins."""
    mean = np.array([np.nanmean(column) if np.isfinite(column).any() else 0.0 for column in sizes.T])
    return np.argsort(mean, kind="stable")


def render_video(
    source: SourceClip,
    variants: list[Variant],
    generators: dict[str, Generator],
    frames_table,
    out_dir: str | os.PathLike,
    settings: RenderSettings,
    identity=None,
    lpips: torch.nn.Module | None = None,
    parser: FaceParser | None = None,
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Render and write every video of one source video (module docstring).

    With several face tracks (``frames_table["track"]``, sg3pipe.tracks) every track's frames are rendered in
    the same batches; each track's crop-sized videos go to ``out_dir/face{k}/``, and the paste-back videos put
    every track's edit into the same source frame, each under its own mask, larger faces over smaller ones.

    Args:
        variants: from :mod:`sg3pipe.render.variants`; those named ``edit-*`` also make the side-by-side and
            paste-back videos, ``pti`` the field-of-view one.
        generators: ``{"base": G, "pti": G_pti}`` (the same generator twice when PTI is off).
        frames_table: ``frames.parquet`` as a pandas frame (landmarks and crop window for paste-back).
        identity: a :class:`sg3pipe.metrics.identity.IdentityModel`, or None for no identity metrics.
        lpips: an LPIPS module (``(a, b) -> [B, 1, 1, 1]``), or None.
        parser: a face parser for the paste-back masks, or None for the landmarks' masks.

    Returns:
        ``(columns, summaries)``: per-row metric columns ``[R]`` (module docstring; NaN on unusable rows), and
        per track (track 0 first) its numbers: frames, usable frames, render frames/s, TL-ID and TG-ID of each
        edit, and with stitching the mean ring L2 of each edit before and after it (``stitching``).
    """
    out_dir = Path(out_dir)
    n = len(frames_table)
    tracks = track_rows(frames_table["track"].to_numpy())
    count = len(tracks)
    usable_all = np.isfinite(variants[0].ws).all(axis=(1, 2))
    edits = [v for v in variants if v.name.startswith("edit-")]
    pti = next(v for v in variants if v.name == "pti")
    landmarks = column_array(frames_table, "landmarks", (68, 2)).astype(np.float64)
    crop_quads = column_array(frames_table, "crop_quad", (4, 2)).astype(np.float64)[[rows[0] for rows in tracks]]
    sizes = quad_side(column_array(frames_table, "aligned_quad", (4, 2)).astype(np.float64))  # [R], NaN: none
    source_transforms = column_array(frames_table, "transform", (3, 3)).astype(np.float64)  # the crops' faces
    resolution = generators["base"].img_resolution
    metrics = ["l2"] + ["lpips"] * (lpips is not None) + ["identity"] * (identity is not None)
    columns = {f"{metric}.{v.name}": np.full(n, np.nan) for v in variants for metric in metrics}
    descriptors = {name: np.full((n, 128), np.nan) for name in ["source", *(v.name for v in edits)]}
    first_s = float(frames_table["time_s"].iloc[0])  # player time of the clip's first frame: the audio's start
    audio = {"audio_from": source.video, "audio_start_s": first_s} if source.has_audio else {}
    crop_names = [v.name for v in variants] + ["fov", "side_by_side"]
    folders = [out_dir] if count == 1 else [out_dir / track_name(track) for track in range(count)]
    places = {(track, name): (folder, name) for track, folder in enumerate(folders) for name in crop_names}
    if settings.pasteback:
        places.update({(None, pasteback_name(v.name)): (out_dir, pasteback_name(v.name)) for v in edits})
    started, done = time.monotonic(), 0
    stitching = [{} for _ in tracks]  # per track: edit -> ring L2 before and after stitching, per batch and count
    with contextlib.ExitStack() as stack:
        sinks = {}
        for key, (folder, name) in places.items():
            folder.mkdir(parents=True, exist_ok=True)
            png = folder / f"{name}.png" if source.still else None
            sinks[key] = stack.enter_context(VideoSink(folder / f"{name}.mp4", source.fps, **audio, still_png=png))
        for crops, frames in _batches(source, settings.batch, count, settings.pasteback):
            rows = np.arange(done, done + len(crops))
            usable = usable_all[rows]
            use = rows[usable]
            shown = {}
            if identity is not None and len(use):
                descriptors["source"][use] = identity.descriptors(crops[usable], source_transforms[use])
            with torch.no_grad():
                for variant in variants:
                    G = generators[variant.generator]
                    images = render_images(G, variant, use) if len(use) else None
                    shown[variant.name] = _fill(to_uint8(images), usable, crops) if len(use) else crops
                    if len(use):
                        _score(columns, variant.name, images, crops[usable], use, lpips)
                        if identity is not None:
                            drawn_descriptors = identity.descriptors(to_uint8(images), variant.transforms[use])
                            columns[f"identity.{variant.name}"][use] = descriptor_cosine(
                                drawn_descriptors, descriptors["source"][use]
                            )
                            if variant.name in descriptors:
                                descriptors[variant.name][use] = drawn_descriptors
                fov = _fov(generators["pti"], pti, use, usable, crops, settings.fov_pad)
            side_by_side = np.concatenate([crops, shown["pti"], *(shown[v.name] for v in edits)], axis=2)
            for track in range(count):
                mine = slice(track, None, count)  # this track's rows of the batch
                for variant in variants:
                    sinks[track, variant.name].write(shown[variant.name][mine])
                sinks[track, "fov"].write(fov[mine])
                sinks[track, "side_by_side"].write(side_by_side[mine])
            if settings.pasteback:
                pasted = {v.name: frames for v in edits}  # no usable frame: the source frames as they are
                for track in _paste_order(sizes[rows].reshape(-1, count)):
                    mine = slice(track, None, count)
                    track_usable, track_use = usable[mine], rows[mine][usable[mine]]
                    if not len(track_use):
                        continue
                    track_shown = {v.name: shown[v.name][mine] for v in edits}
                    for variant, edited, masks in _edited_crops(
                        edits, track_shown, generators, crops[mine], track_usable, track_use, landmarks,
                        crop_quads[track], resolution, settings, parser, stitching[track],
                    ):  # fmt: skip
                        pasted[variant.name] = _paste(pasted[variant.name], track_usable, edited, crop_quads[track],
                                                      masks)  # fmt: skip
                for variant in edits:
                    sinks[None, pasteback_name(variant.name)].write(pasted[variant.name])
            done += len(crops)
        if done != n:
            raise ValueError(
                f"{source.crops} holds {done} crops but frames.parquet lists {n} rows; rerun the frames rule for "
                "this video"
            )
    elapsed = time.monotonic() - started
    summaries = []
    for track, track_stitching in zip(tracks, stitching, strict=True):
        use = usable_all[track]
        summary = {"frames": len(track), "usable_frames": int(use.sum()), "render_fps": len(track) / elapsed}
        if identity is not None:
            for variant in edits:
                summary[variant.name] = identity_consistency(
                    descriptors["source"][track], descriptors[variant.name][track], use
                )
        if track_stitching:
            summary["stitching"] = {
                name: {key: sum(v * k for v, k in pairs) / sum(k for _, k in pairs) for key, pairs in values.items()}
                for name, values in track_stitching.items()
            }
        summaries.append(summary)
    log.info("rendered %d videos of %d frames and %d tracks in %.1f s", len(sinks), n // count, count, elapsed)
    return columns, summaries


def _edited_crops(edits, shown, generators, crops, usable, use, landmarks, crop_quad, resolution, settings, parser,
                  stitching):  # fmt: skip
    """For one track's rows of a batch: ``(variant, edited crops [U, R, R, 3] uint8, masks)`` per edit, ready to
    paste into the track's ``usable`` frames (stitched first with ``settings.stitching_steps``; the ring L2
    before and after is added to ``stitching``). ``shown`` holds each edit's crops of the track ``[B, R, R, 3]``,
    ``crops`` its source crops ``[B, R, R, 3]``, ``use`` its usable rows ``[U]`` of the table."""
    dilate, feather = settings.mask_dilate * resolution, settings.mask_feather * resolution
    if parser is None:
        masks = face_mask(frame_to_crop(landmarks[use], crop_quad, resolution), resolution, dilate, feather)
    else:
        source_face = parser(crops[usable])
    for variant in edits:
        edited = shown[variant.name][usable]
        if parser is not None:
            masks = region_mask(source_face | parser(edited), dilate, feather)
        if settings.stitching_steps > 0:
            G = generators[variant.generator]
            stitched, ring = stitch(G, variant, use, masks, crops[usable], settings.stitching_steps,
                                    settings.stitching_lr)  # fmt: skip
            edited = to_uint8(stitched)
            for key, value in ring.items():
                stitching.setdefault(variant.name, {}).setdefault(key, []).append((value, len(use)))
        yield variant, edited, masks


def _score(columns: dict, name: str, images: torch.Tensor, crops: np.ndarray, rows: np.ndarray, lpips) -> None:
    """Fill the ``l2`` (and ``lpips``) columns of ``rows`` for the transformed renders ``images``."""
    target = to_tensor(crops).to(images.device)
    columns[f"l2.{name}"][rows] = (images.clamp(-1, 1) - target).square().mean(dim=(1, 2, 3)).double().cpu().numpy()
    if lpips is not None:
        columns[f"lpips.{name}"][rows] = lpips(images.clamp(-1, 1), target).flatten().double().cpu().numpy()


def _fov(G: Generator, variant: Variant, use: np.ndarray, usable: np.ndarray, crops: np.ndarray, pad) -> np.ndarray:
    """The field-of-view frames of a batch: expanded renders, the source crop centred on black elsewhere."""
    left, right, top, bottom = pad
    r = crops.shape[1]
    canvas = np.zeros((len(crops), r + top + bottom, r + left + right, 3), dtype=np.uint8)
    canvas[:, top : top + r, left : left + r] = crops
    if len(use):
        ws = torch.from_numpy(variant.ws[use]).to(G.mapping.w_avg.device)
        canvas[usable] = to_uint8(expand_fov(G, ws, variant.transforms[use], pad))
    return canvas


def render_outputs(
    paths: dict[str, str | os.PathLike],
    edit_tables: list[str | os.PathLike],
    G: Generator,
    G_pti: Generator,
    settings: RenderSettings,
    smoothing: SmoothingSettings,
    identity=None,
    lpips: torch.nn.Module | None = None,
    provenance: dict | None = None,
    parser: FaceParser | None = None,
) -> list[dict]:
    """Render a video's variants from its tables and write ``metrics.parquet`` (one row per frame and track).

    Args:
        paths: ``frames``, ``latents``, ``smoothed`` (tables), ``crops`` (the frames stage's video of
            unaligned crops), ``video`` (the source), ``out_dir`` (where the videos go), ``metrics`` (the table), and
            optionally ``pti_losses`` (``pti/loss.parquet``, for the PTI start and end loss in the summary).
        edit_tables: ``edits/{edit}.parquet`` of every edit to render.

    Returns:
        The per-track summaries stored in the table's metadata as ``summary`` (a list, track 0 first: frames,
        render frames/s, TL-ID and TG-ID per edit, jitter before and after smoothing, PTI loss at start and end).
    """
    frames, frames_meta = read_table(paths["frames"])
    latents, latents_meta = read_table(paths["latents"])
    smoothed, smoothed_meta = read_table(paths["smoothed"])
    variants = base_variants(latents, latents_meta, frames, smoothed)
    usable = smoothed["usable"].to_numpy().astype(bool)
    for path in edit_tables:
        table, meta = read_table(path)
        variants += edit_variants(
            meta["edit"]["name"], table, meta, usable, variants[1].ws, variants[1].transforms, smoothing, G
        )
    source = SourceClip(
        crops=paths["crops"],
        video=paths["video"],
        clip=frames_meta["provenance"]["config"]["clip"],  # how the frames stage decoded the source
        fps=frames_meta["video"]["fps"],
        has_audio=probe_video(paths["video"]).has_audio,
        still=Path(paths["video"]).suffix.lower() in STILL_SUFFIXES,
    )
    columns, summaries = render_video(
        source, variants, {"base": G, "pti": G_pti}, frames, paths["out_dir"], settings, identity, lpips, parser
    )
    pti = None
    if paths.get("pti_losses"):
        _, pti_meta = read_table(paths["pti_losses"])
        pti = {k: pti_meta[k] for k in ("start_l2", "end_l2", "outcome") if k in pti_meta}
    for summary, jitter in zip(summaries, smoothed_meta["jitter"], strict=True):
        summary["jitter"] = jitter
        if pti is not None:
            summary["pti"] = pti  # one tuned generator for every track of the video
    metadata = {"provenance": provenance or {}, "render": asdict(settings), "summary": summaries}
    base = {name: frames[name].to_numpy() for name in ("frame", "track", "status")}
    write_table(paths["metrics"], {**base, "usable": usable, **columns}, metadata)
    return summaries
