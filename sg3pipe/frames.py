"""The per-video frames stage: landmarks, FFHQ-aligned crops, unaligned crops and crop transforms.

:func:`build_frames` turns one video into three files:

* ``frames.parquet``: one row per decoded source frame (:data:`COLUMNS`), provenance in the metadata;
* ``aligned.mkv``: the FFHQ-aligned crop of every frame (``align.size`` pixels square, lossless FFV1);
* ``crops.mkv``: the unaligned crop of every frame, cut with one window for the whole video (same size).

Both containers hold exactly one frame per table row, in order. It takes two decodes of the video: the first
finds the landmarks (the crop window needs all of them), the second cuts both crops.

With ``faces.max_faces`` > 1 every face in view long enough is a track (sg3pipe.faces.multi_tracking), with its
own status, quads, crop window and transforms; the table then has a row per frame and track, frame-major
(sg3pipe.tracks), and the containers a crop per row. One face (the default) gives one row per frame, track 0.

Frame status (column ``status``):

* ``ok``: landmarks found in the frame;
* ``interpolated``: no face found, but within a gap of at most ``align.max_gap`` frames with faces on both
  sides; its landmarks are interpolated linearly between them;
* ``unusable``: no face found, in a longer gap;
* ``no_face``: no face found, in a gap of at most ``max_gap`` frames at the start or the end of the clip
  (nothing on one side to interpolate from).

Later stages use the frames whose status is in :data:`USABLE` and pass the others through unedited. Their
aligned frame is black and their landmarks, quads and transforms are NaN; their unaligned crop is real.

Columns (pixel coordinates are those of the upright decoded frame; arrays are stored flattened, shapes in the
metadata under ``shapes``):

* ``frame``: index of the frame in the decoded clip (the row index with one track); ``source_frame``: index of
  the frame in the video at its own rate (what landmark tables and face tracks are keyed by); ``time_s``: player
  time (s); ``track``: the face track (0 with one face; ``face{track}`` in file names);
* ``n_faces`` (faces in view at the last count, sg3pipe.faces.tracking), ``multiple_faces`` (``n_faces > 1``),
  ``bbox`` ``[4]`` (the detector's box, NaN when none), ``score`` (its score; 1 for table landmarks);
* ``landmarks`` ``[68, 2]``, ``aligned_quad`` ``[4, 2]`` (FFHQ quad, sg3pipe.faces.alignment), ``crop_quad``
  ``[4, 2]`` (the track's crop window, the same in each of its rows);
* ``angle_deg``, ``tx``, ``ty``, ``scale`` and ``transform`` ``[3, 3]``: the content-moving similarity ``M`` from
  aligned-crop to unaligned-crop unit coordinates (sg3pipe.faces.crop_transforms); render a frame's crop with
  ``G.synthesis(ws, transform=inverse(M))``. ``transform`` includes the scale only with ``align.use_scale``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sg3pipe.faces.alignment import crop_window, ffhq_quad, warp_quad
from sg3pipe.faces.crop_transforms import crop_transforms
from sg3pipe.faces.landmarks import make_detector, make_predictor, read_landmark_table
from sg3pipe.faces.tracking import FaceFrame, FaceTracker, read_face_track
from sg3pipe.io.tables import write_table
from sg3pipe.provenance import provenance
from sg3pipe.settings import settings
from sg3pipe.video.decode import read_frames
from sg3pipe.video.probe import VideoInfo, probe_video
from sg3pipe.video.writer import write_video

log = logging.getLogger(__name__)

STATUSES = ("ok", "interpolated", "no_face", "unusable")
USABLE = ("ok", "interpolated")

# Table columns and the shapes of the array columns (stored flattened, shapes in the metadata).
COLUMNS = (
    "frame",
    "source_frame",
    "time_s",
    "track",
    "status",
    "n_faces",
    "multiple_faces",
    "bbox",
    "landmarks",
    "aligned_quad",
    "crop_quad",
    "angle_deg",
    "tx",
    "ty",
    "scale",
    "transform",
    "score",
)
SHAPES = {"bbox": [4], "landmarks": [68, 2], "aligned_quad": [4, 2], "crop_quad": [4, 2], "transform": [3, 3]}


class NoUsableFaceError(RuntimeError):
    """Not one frame of a video has a usable face."""


@dataclass(frozen=True)
class IngestSettings:
    """Config ``ingest``: how frames are decoded (defaults as in config/schemas/config.schema.yaml)."""

    fps: float | None = None  # decode at this constant rate (frames/s); None: the video's own rate
    batch_size: int = 64  # frames decoded per batch, at most
    max_batch_mb: float = 8.0  # decoded frames per batch, at most, in MiB (at least one frame)

    def frames_per_batch(self, info: VideoInfo) -> int:
        """Frames per decoded batch of the video ``info``: ``batch_size``, fewer where its frames are large, so
        that the few batches in flight (:func:`prefetch`) hold a bounded number of bytes at any frame size
        (8 MiB: 10 frames of 512x512, one of 1080p)."""
        frame_bytes = info.width * info.height * 3
        return max(1, min(self.batch_size, int(self.max_batch_mb * 2**20) // frame_bytes))


@dataclass(frozen=True)
class LandmarkSettings:
    """Config ``landmarks``: where landmarks come from."""

    backend: str = "dlib"  # dlib | face_alignment | table
    detector: str = "hog"  # hog | mmod (dlib's face detectors, used by both predictor backends)
    upsample: int = 1  # times frames are doubled before whole-frame detection (1: faces from ~40 px)
    min_score: float = 0.0  # minimum detector score of a face
    count_score: float = 0.5  # minimum detector score of another face to count in n_faces
    redetect_every: int = 25  # whole-frame detection at least every this many frames (0: when lost only)
    table: str | None = None  # Parquet landmarks table for the `table` backend (manifest `landmarks` wins)


@dataclass(frozen=True)
class AlignSettings:
    """Config ``align``: the aligned crops, the crop window and the transforms."""

    size: int | None = None  # side of both crops in pixels: the generator's resolution (the workflow fills it)
    quad_rule: str = "ffhq"  # ffhq: max(2|e2e|, 1.8|e2m|); editing: 2|e2e| (stylegan3-editing)
    crop_mode: str = "robust"  # robust: median centre and quantile size; first_frame: official rule
    crop_quantile: float = 0.5  # quantile of the quad sides that sets the crop window side
    crop_margin: float = 1.0  # factor on that side
    border: str = "reflect"  # how crops are filled beyond the frame: reflect | edge | constant
    max_gap: int = 5  # longest run of faceless frames filled by interpolation
    use_scale: bool = False  # whether `transform` includes the scale term

    def __post_init__(self):
        if self.size is None:
            raise ValueError(
                "align.size is not set: the workflow sets it to the generator's resolution "
                "(sg3pipe.workflow_config.resolve_config); outside the workflow give the crop side in pixels"
            )


@dataclass(frozen=True)
class FaceSettings:
    """Config ``faces``: how many faces of a clip are followed (sg3pipe.tracks)."""

    max_faces: int = 1  # 1: one face (sg3pipe.faces.tracking); N > 1: up to N tracks (sg3pipe.faces.multi_tracking)
    min_size_px: float = 0.0  # with max_faces > 1: narrower faces (detector box, frame pixels) start no track
    min_frames: int = 10  # with max_faces > 1: tracks found in fewer frames are dropped


@dataclass
class FaceTrack:
    """Pass 1 of a video: what was found of each followed face in each decoded frame (``N`` frames, ``T``
    tracks)."""

    frames: np.ndarray  # [N] int64 index in the decoded clip
    source_frames: np.ndarray  # [N] int64 index of the frame in the video at its own rate
    times_s: np.ndarray  # [N] float64 player time of each frame (s)
    landmarks: np.ndarray  # [T, N, 68, 2] float64 pixels, NaN where the track's face was not found
    boxes: np.ndarray  # [T, N, 4] float64 detector boxes (x0, y0, x1, y1), NaN where none
    scores: np.ndarray  # [T, N] float64 detector scores, NaN where none
    n_faces: np.ndarray  # [N] int64 faces in view


def fill_gaps(landmarks: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate short runs of faceless frames and label every frame (module docstring).

    Args:
        landmarks: ``[N, 68, 2]`` pixel coordinates, NaN rows where no face was found.
        max_gap: longest run of faceless frames that is filled.

    Returns:
        ``(landmarks, status)``: filled ``[N, 68, 2]`` float64 and ``[N]`` status strings.
    """
    landmarks = np.array(landmarks, dtype=np.float64)
    found = ~np.isnan(landmarks).any(axis=(1, 2))
    status = np.where(found, "ok", "unusable").astype(object)
    start = 0
    while start < len(found):
        if found[start]:
            start += 1
            continue
        end = start
        while end < len(found) and not found[end]:
            end += 1
        # frames start..end-1 have no face
        if end - start <= max_gap:
            if start == 0 or end == len(found):
                status[start:end] = "no_face"
            else:
                w = ((np.arange(start, end) - (start - 1)) / (end - (start - 1)))[:, None, None]
                landmarks[start:end] = (1 - w) * landmarks[start - 1] + w * landmarks[end]
                status[start:end] = "interpolated"
        start = end
    return landmarks, status


def locate_faces(
    info: VideoInfo,
    landmarks: LandmarkSettings,
    ingest: IngestSettings,
    clip: dict,
    landmark_table: str | None = None,
    face_track: str | None = None,
    device: str = "auto",
    faces: FaceSettings = FaceSettings(),
) -> FaceTrack:
    """Pass 1: decode the clip and find the landmarks of each followed face in every frame.

    Args:
        info: the probed video.
        clip: ``read_frames`` options ``start_s``, ``end_s``, ``max_frames`` (None: whole video).
        landmark_table: Parquet table of precomputed landmarks (columns ``frame``, ``landmarks``); used
            instead of any detector when given (one track).
        face_track: table of face boxes per frame (sg3pipe.faces.tracking.read_face_track): the predictor
            runs on these boxes instead of the detector's (one track: the face the table pins).
        device: torch device of the ``face_alignment`` backend (``auto``: CUDA when present, else the CPU).
        faces: with ``max_faces`` > 1 (and neither table given), every face is tracked
            (sg3pipe.faces.multi_tracking) and the tracks kept by its ``select_tracks`` are returned.
    """
    several = faces.max_faces > 1 and landmark_table is None and face_track is None
    find = None
    if landmark_table is None:
        find = _face_finder(landmarks, face_track, device, faces if several else None)
    frames, sources, times, found = [], [], [], []
    total = clip.get("max_frames") or info.n_frames
    with tqdm(total=total, desc=f"landmarks {os.path.basename(info.path)}", unit="frame", mininterval=5) as bar:
        for batch in _decoded(info, ingest, clip):
            frames.append(batch.indices)
            sources.append(np.rint((batch.times_s - info.first_frame_s) * info.fps).astype(np.int64))
            times.append(batch.times_s)
            if find is not None:
                found.extend(find(batch.images, sources[-1]))
            bar.update(len(batch.indices))
    frames, sources, times = np.concatenate(frames), np.concatenate(sources), np.concatenate(times)
    if landmark_table is not None:
        lm = read_landmark_table(landmark_table, sources)
        has = ~np.isnan(lm).any(axis=(1, 2))
        boxes = np.full((1, len(frames), 4), np.nan)
        scores = np.where(has, 1.0, np.nan)[None]
        return FaceTrack(frames, sources, times, lm[None], boxes, scores, has.astype(np.int64))
    if several:
        from sg3pipe.faces.multi_tracking import select_tracks

        n_faces = np.array([max((f.n_faces for f in seen.values()), default=0) for seen in found], dtype=np.int64)
        tracks = select_tracks(found, faces.max_faces, faces.min_frames)
        log.info("%s: %d face tracks kept", info.path, len(tracks))
    else:
        n_faces = np.array([f.n_faces for f in found], dtype=np.int64)
        tracks = [found]  # a frame without the face has a FaceFrame of NaN score and no landmarks or box
    return FaceTrack(
        frames,
        sources,
        times,
        _stack(tracks, lambda f: f.landmarks, (68, 2)),
        _stack(tracks, lambda f: f.box, (4,)),
        _stack(tracks, lambda f: f.score, ()),
        n_faces,
    )


def _stack(tracks: list[list[FaceFrame | None]], value, shape: tuple[int, ...]) -> np.ndarray:
    """``[T, N, *shape]`` float64 of ``value(face_frame)`` per track and frame, NaN where absent (or None)."""
    out = np.full((len(tracks), len(tracks[0]) if tracks else 0, *shape), np.nan)
    for t, track in enumerate(tracks):
        for i, found in enumerate(track):
            if found is not None and value(found) is not None:
                out[t, i] = value(found)
    return out


def _face_finder(landmarks: LandmarkSettings, face_track: str | None, device: str, faces: FaceSettings | None):
    """A function ``(images [B, H, W, 3], source_frames [B]) -> [B]`` results for pass 1: a
    :class:`~sg3pipe.faces.tracking.FaceFrame` per frame for one face, or with ``faces`` (several faces) a dict
    track id -> FaceFrame per frame."""
    predictor = make_predictor(landmarks.backend, device)
    if face_track is not None:
        boxes = read_face_track(face_track)

        def on_track_boxes(images: np.ndarray, source_frames: np.ndarray) -> list[FaceFrame]:
            out = []
            for index, image in zip(source_frames, images, strict=True):
                box = boxes.get(int(index))
                found = None if box is None else predictor(image, box[None])[0]
                out.append(FaceFrame(found, box, float("nan"), int(box is not None), False))
            return out

        return on_track_boxes
    detector = make_detector(landmarks.detector, landmarks.upsample, landmarks.min_score)
    if faces is not None:
        from sg3pipe.faces.multi_tracking import MultiFaceTracker
        from sg3pipe.metrics.identity import IdentityModel

        tracker = MultiFaceTracker(detector, predictor, faces.max_faces, landmarks.redetect_every,
                                   landmarks.count_score, faces.min_size_px, IdentityModel())  # fmt: skip
    else:
        tracker = FaceTracker(detector, predictor, landmarks.redetect_every, landmarks.count_score)

    def tracked(images: np.ndarray, source_frames: np.ndarray) -> list:
        return [tracker.update(image) for image in images]

    return tracked


def frame_columns(track: FaceTrack, align: AlignSettings, video: str) -> dict[str, np.ndarray]:
    """The frames table of a video from what pass 1 found: status, quads, crop window, transforms.

    Each track gets its own status, quads, crop window (one for the whole clip) and transforms; the rows are
    frame-major (sg3pipe.tracks): row ``i * T + t`` is frame ``i`` of track ``t``.

    Args:
        track: pass 1's result for ``N`` frames and ``T`` tracks.
        align: the alignment settings.
        video: the video's path, for the error message.

    Returns:
        Column name -> ``[N * T, ...]`` array, in the order of :data:`COLUMNS` (shapes in :data:`SHAPES`).

    Raises:
        NoUsableFaceError: no frame of any track is usable.
    """
    per_track = [_track_columns(landmarks, align) for landmarks in track.landmarks]
    if not per_track or not any(np.isin(status, USABLE).any() for status, *_ in per_track):
        raise NoUsableFaceError(
            f"{video}: no usable face in any of its {len(track.frames)} frames; check that a face is in view (dlib "
            "finds faces from 80 / 2**landmarks.upsample pixels wide): raise landmarks.upsample for smaller "
            "faces, set landmarks.detector: mmod for turned heads, or give the video a landmarks table in the "
            "manifest"
        )
    n, count = len(track.frames), len(per_track)

    def rows(values) -> np.ndarray:
        """Per-track arrays ``T x [N, ...]`` -> frame-major rows ``[N * T, ...]``."""
        values = np.stack(values, axis=1)
        return values.reshape(n * count, *values.shape[2:])

    def repeated(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, count, axis=0)

    status, filled, quads, windows, transforms = zip(*per_track, strict=True)
    return {
        "frame": repeated(track.frames.astype(np.int64)),
        "source_frame": repeated(track.source_frames.astype(np.int64)),
        "time_s": repeated(track.times_s.astype(np.float64)),
        "track": np.tile(np.arange(count, dtype=np.int64), n),
        "status": rows(status).astype(str),
        "n_faces": repeated(track.n_faces),
        "multiple_faces": repeated(track.n_faces > 1),
        "bbox": rows(track.boxes),
        "landmarks": rows(filled),
        "aligned_quad": rows(quads),
        "crop_quad": rows([np.broadcast_to(window, (n, 4, 2)) for window in windows]),
        "angle_deg": rows([t["angle_deg"] for t in transforms]),
        "tx": rows([t["tx"] for t in transforms]),
        "ty": rows([t["ty"] for t in transforms]),
        "scale": rows([t["scale"] for t in transforms]),
        "transform": rows([t["transform"].reshape(n, 9) for t in transforms]),
        "score": rows(track.scores),
    }


def _track_columns(landmarks: np.ndarray, align: AlignSettings) -> tuple:
    """One track's ``(status [N], landmarks [N, 68, 2], quads [N, 4, 2], window [4, 2], transforms)`` from its
    landmarks ``[N, 68, 2]`` (NaN where not found); a track without a usable frame has no window (NaN)."""
    filled, status = fill_gaps(landmarks, align.max_gap)
    usable = np.isin(status, USABLE)
    filled[~usable] = np.nan
    quads = ffhq_quad(filled, align.quad_rule)
    if usable.any():
        window = crop_window(quads, usable, align.crop_mode, align.crop_quantile, align.crop_margin)
    else:
        window = np.full((4, 2), np.nan)
    return status, filled, quads, window, crop_transforms(quads, window, align.use_scale)


def build_frames(
    video: str | os.PathLike,
    table_path: str | os.PathLike,
    aligned_path: str | os.PathLike,
    crops_path: str | os.PathLike,
    config: dict,
    start_s: float | None = None,
    end_s: float | None = None,
    max_frames: int | None = None,
    landmarks: str | None = None,
    face_track: str | None = None,
) -> None:
    """Run the frames stage on one video (module docstring).

    Args:
        video: the source video.
        table_path, aligned_path, crops_path: outputs (``.parquet``, ``.mkv``, ``.mkv``), written atomically.
        config: the workflow config; reads its sections ``ingest``, ``landmarks``, ``align`` and ``device``.
        start_s, end_s, max_frames: the clip of the video to use (manifest options; None: all of it).
        landmarks: a precomputed landmarks table for this video (manifest option), else
            ``landmarks.table`` when the backend is ``table``.
        face_track: a face-track table for this video (manifest option).

    Raises:
        VideoError: the video cannot be read. NoUsableFaceError: no frame has a usable face.
    """
    ingest = settings(IngestSettings, config.get("ingest"))
    lm_settings = settings(LandmarkSettings, config.get("landmarks"))
    align = settings(AlignSettings, config.get("align"))
    faces = settings(FaceSettings, config.get("faces"))
    if landmarks is None and lm_settings.backend == "table":
        if lm_settings.table is None:
            raise ValueError(
                f"{video}: landmark backend `table` needs a table: set landmarks.table in the config "
                "or a `landmarks` column in the manifest"
            )
        landmarks = lm_settings.table
    info = probe_video(video)
    clip = {"start_s": start_s, "end_s": end_s, "max_frames": max_frames}
    device = config.get("device", "auto")
    track = locate_faces(info, lm_settings, ingest, clip, landmarks, face_track, device, faces)
    columns = frame_columns(track, align, str(video))
    fps = ingest.fps or info.fps
    _write_crops(info, clip, ingest, columns["aligned_quad"], columns["crop_quad"], len(track.landmarks), align,
                 aligned_path, crops_path, fps)  # fmt: skip
    counts = {s: int((columns["status"] == s).sum()) for s in STATUSES}
    log.info("%s: %d frames, %d tracks: %s", video, len(track.frames), len(track.landmarks), counts)
    used = {"ingest": ingest, "landmarks": lm_settings, "align": align}
    if faces.max_faces > 1:
        used["faces"] = faces
    meta = {
        "provenance": provenance(
            {
                **{k: dataclasses.asdict(v) for k, v in used.items()},
                "clip": clip,
                "landmarks_table": landmarks,
                "face_track": face_track,
            },
            _model_files(lm_settings, landmarks),
        ),
        "shapes": SHAPES,
        "video": {"path": info.path, "width": info.width, "height": info.height, "fps": fps},
        "status_counts": counts,
        "transform": "content-moving M, aligned-crop to crop unit coordinates; G.synthesis takes inverse(M)",
    }
    write_table(table_path, columns, meta)


def _model_files(lm: LandmarkSettings, landmark_table: str | None) -> dict:
    """The model files a run depended on, for provenance."""
    from sg3pipe.faces import landmarks as lmk

    if landmark_table is not None:
        return {}
    files = {"detector": lmk.dlib_model_path(lmk.MMOD_DETECTOR)} if lm.detector == "mmod" else {}
    if lm.backend == "face_alignment":
        files["predictor"] = lmk.fan_checkpoint_path()
    else:
        files["predictor"] = lmk.dlib_model_path(lmk.SHAPE_PREDICTOR)
    return files


def _write_crops(info, clip, ingest, quads, windows, per_frame, align, aligned_path, crops_path, fps) -> None:
    """Pass 2: decode again and write the aligned and the unaligned crop of every row.

    ``quads`` ``[R, 4, 2]`` are the aligned quads of pass 1's rows (NaN: black frame), ``windows`` ``[R, 4, 2]``
    their track's crop window; the ``R = N * T`` rows are frame-major (sg3pipe.tracks), so each decoded frame
    gives ``per_frame`` (``T``) consecutive crops. A decode that does not give the N frames of pass 1 again
    leaves no file behind.
    """
    black = np.zeros((align.size, align.size, 3), dtype=np.uint8)
    n = len(quads) // per_frame

    def images() -> Iterator[np.ndarray]:
        batches = _decoded(info, ingest, clip)
        with tqdm(total=n, desc=f"crops {os.path.basename(info.path)}", unit="frame", mininterval=5) as bar:
            for batch in batches:
                yield from batch.images
                bar.update(len(batch.images))

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        frames = images()
        image = None
        for row, (quad, window) in enumerate(zip(quads, windows, strict=True)):
            if row % per_frame == 0:
                image = next(frames, None)
            if image is None:
                raise RuntimeError(f"{info.path}: the second decode gave fewer than the {n} frames of the first")
            aligned = black if np.isnan(quad).any() else warp_quad(image, quad, align.size, align.border)
            yield aligned, warp_quad(image, window, align.size, align.border)
        if next(frames, None) is not None:
            raise RuntimeError(f"{info.path}: the second decode gave more than the {n} frames of the first")

    write_pair(aligned_path, crops_path, pairs(), fps)


def _decoded(info: VideoInfo, ingest: IngestSettings, clip: dict) -> Iterator:
    """The clip's ``FrameBatch``es (:func:`read_frames` with ``clip``'s range), decoded ahead by :func:`prefetch`,
    in batches of ``ingest.frames_per_batch``."""
    return prefetch(read_frames(info.path, info, fps=ingest.fps, batch_size=ingest.frames_per_batch(info), **clip))


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Yield the items of ``items`` while a thread already reads the next ``depth`` of them.

    Decoding runs in ffmpeg's own process, but a pipe holds less than one frame: without a reader ahead,
    ffmpeg waits while the frames are processed and the two never overlap. An error of the reader is raised
    in the consumer; a consumer that stops early stops (and closes) the reader.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def read() -> None:
        try:
            if all(offer(item) for item in items):
                offer(done)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            offer(exc)
        finally:
            if stop.is_set() and hasattr(items, "close"):
                items.close()  # e.g. read_frames: ends its ffmpeg process

    thread = threading.Thread(target=read, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def write_pair(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    fps: float,
) -> None:
    """Write two lossless videos at once from one stream of frame pairs ``([H, W, 3], [H, W, 3])`` uint8.

    The second video is encoded by a thread fed through a small queue. If either side fails, neither file is
    left behind and the error is raised here.
    """
    feed: queue.Queue = queue.Queue(maxsize=8)
    errors: list[BaseException] = []
    abort = RuntimeError(f"writing {path_a} failed")

    def frames_b() -> Iterator[np.ndarray]:
        while (item := feed.get()) is not None:
            if item is abort:
                raise abort
            yield item

    def encode_b() -> None:
        try:
            write_video(path_b, frames_b(), fps, codec="lossless")
        except BaseException as exc:  # noqa: BLE001 - raised again by the main thread
            errors.append(exc)

    def send(item) -> None:
        while thread.is_alive():  # a thread that stopped on an error takes nothing more
            try:
                feed.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def frames_a() -> Iterator[np.ndarray]:
        for a, b in pairs:
            if errors:
                raise errors[0]
            send(b)
            yield a

    thread = threading.Thread(target=encode_b, name="write-crops")
    thread.start()
    try:
        write_video(path_a, frames_a(), fps, codec="lossless")
    except BaseException:
        send(abort)
        thread.join()
        raise
    send(None)
    thread.join()
    if errors:
        Path(path_a).unlink(missing_ok=True)
        raise errors[0]
