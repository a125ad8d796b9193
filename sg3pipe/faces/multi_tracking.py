"""Follow several faces through a video, each under a stable track id.

Each live track moves on by :func:`sg3pipe.faces.tracking.track_region`, the one-face tracker's region step
(upright search around the previous FFHQ quad). A whole-frame detection runs on the first frame, every
``redetect_every`` frames, and on every frame of the first :data:`LOST_SEARCH_FRAMES` after a track was lost;
its detections that no live track claims (IoU below :data:`~sg3pipe.faces.tracking.MIN_IOU`) start or resume
tracks.

**Linking rule.** An unclaimed detection resumes a *lost* track (occluded, out of the frame, or dropped in a
crossing) rather than starting a new one when it fits it:

* by identity, when an identity model is given and the track has a descriptor: the Euclidean distance between
  the detection's dlib descriptor and the mean of the track's descriptors (sampled on a few confident frames
  where the face overlaps no other track) must be below :data:`ID_THRESHOLD` (dlib's same-person distance);
* by position otherwise: the distance from where the track was last seen, in widths of its last box, must be
  below :data:`POSITION_GATE`.

Among several fits, detections and lost tracks are paired to minimise the summed cost (descriptor distance
over ``ID_THRESHOLD`` plus position distance over ``POSITION_GATE``). A detection fitting no lost track starts
a new track (ids count up in order of first appearance) while fewer than ``max_faces`` tracks are live,
larger faces first.

**Crossing faces.** When two live tracks land on the same face (boxes overlapping by ``MIN_IOU`` or more), the
track that fits the face keeps it: the smaller descriptor distance when both tracks have descriptors, else
the nearer predicted position (last centre plus last motion); the other is lost for that frame and is resumed
by the linking rule when its face shows again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from sg3pipe.faces.alignment import ffhq_quad, warp_quad
from sg3pipe.faces.tracking import MIN_IOU, FaceFrame, iou, track_region

ID_THRESHOLD = 0.6  # dlib descriptor distance below which two faces are the same person (dlib's figure)
POSITION_GATE = 3.0  # a lost track resumes within this many of its box widths of where it was last seen
# A lost track has a whole-frame detection look for it on each of this many frames after it was last seen (an
# occlusion or a crossing usually ends within a second); later only the periodic detection does, so that a face
# that left for good does not cost a whole-frame detection on every remaining frame.
LOST_SEARCH_FRAMES = 25
DESCRIPTOR_FRAMES = 5  # descriptors averaged per track
DESCRIPTOR_EVERY = 5  # frames between a track's descriptor samples
ALIGNED_PX = 224  # side of the FFHQ-aligned face a descriptor is computed from (dlib's chip is 150 px of it)


@dataclass
class _Track:
    """A face's state between frames."""

    landmarks: np.ndarray | None  # [68, 2] in the last frame; None while lost
    box: np.ndarray  # [4] last box seen
    motion: np.ndarray  # [2] box centre displacement per frame at the last sighting (pixels)
    seen: int  # frame index of the last sighting
    descriptors: list[np.ndarray] = field(default_factory=list)  # [128] each
    sampled: int = -DESCRIPTOR_EVERY  # frame of the last descriptor sample

    def mean_descriptor(self) -> np.ndarray | None:
        return np.mean(self.descriptors, axis=0) if self.descriptors else None


def _centre(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[:2] + box[2:])


class MultiFaceTracker:
    """Landmarks of up to ``max_faces`` faces per frame under stable track ids (module docstring).

    Args:
        detector: called on a frame, returns :class:`~sg3pipe.faces.landmarks.Detections`.
        predictor: called on a frame and boxes ``[K, 4]``, returns landmarks ``[K, 68, 2]``.
        max_faces: most tracks live at once.
        redetect_every: whole-frame detection at least every this many frames, to find new faces and faces
            lost long ago (0: only on the first frame and just after a track is lost).
        count_score: detector score from which a detection counts as a face (starts or resumes a track, counts
            towards ``n_faces``).
        min_size_px: detections narrower than this (detector box, pixels) start or resume no track.
        identity: :class:`~sg3pipe.metrics.identity.IdentityModel` or anything with
            ``descriptors(images [N, S, S, 3] uint8 aligned) -> [N, 128]``; None: link by position only.
    """

    def __init__(
        self,
        detector,
        predictor,
        max_faces: int,
        redetect_every: int = 25,
        count_score: float = 0.5,
        min_size_px: float = 0.0,
        identity=None,
    ):
        self.detector = detector
        self.predictor = predictor
        self.max_faces = max_faces
        self.redetect_every = redetect_every
        self.count_score = count_score
        self.min_size_px = min_size_px
        self.identity = identity
        # dlib's detector and predictor read gray images; converting once per frame saves time.
        self.color = getattr(detector, "color", True) or getattr(predictor, "color", True)
        self.tracks: list[_Track] = []  # index = track id
        self._frame = -1
        self._since_detect = 0
        self._in_view = 0  # confident faces at the last whole-frame detection
        self.detections = 0  # whole-frame detections so far

    def update(self, image: np.ndarray) -> dict[int, FaceFrame]:
        """Find the faces in the next frame ``[H, W, 3]`` uint8 RGB.

        Returns:
            Track id -> its :class:`~sg3pipe.faces.tracking.FaceFrame` for the tracks found in this frame
            (``detected``: a whole-frame detection ran on this frame; ``n_faces``: faces in view).
        """
        rgb = image
        if not self.color and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        self._frame += 1
        self._since_detect += 1
        found = {}
        for tid, track in enumerate(self.tracks):
            if track.landmarks is not None:
                face = track_region(self.detector, self.predictor, image, track.landmarks, self.count_score)
                if face is not None:
                    found[tid] = face
        self._resolve_conflicts(rgb, found)
        searching = any(
            tid not in found and self._frame - track.seen <= LOST_SEARCH_FRAMES for tid, track in enumerate(self.tracks)
        )
        periodic = self.redetect_every and self._since_detect >= self.redetect_every
        detected = self._frame == 0 or searching or periodic
        if detected:
            self._link_detections(image, rgb, found)
        for tid, track in enumerate(self.tracks):
            if tid not in found:
                track.landmarks = None
        for tid, face in found.items():
            self._see(tid, face, rgb, found)
        n_faces = max(self._in_view, len(found))
        return {
            tid: FaceFrame(face.landmarks, face.box, face.score, n_faces, bool(detected))
            for tid, face in sorted(found.items())
        }

    def _descriptors(self, rgb: np.ndarray, landmarks: list[np.ndarray]) -> np.ndarray:
        """dlib descriptors ``[K, 128]`` of the faces with ``landmarks`` (``[68, 2]`` each) in frame ``rgb``."""
        aligned = np.stack([warp_quad(rgb, ffhq_quad(lm), ALIGNED_PX) for lm in landmarks])
        return self.identity.descriptors(aligned)

    def _resolve_conflicts(self, rgb: np.ndarray, found: dict[int, FaceFrame]) -> None:
        """Where two tracks found the same face, keep the track that fits it (module docstring); in place."""
        ids = sorted(found)
        for a_pos, a in enumerate(ids):
            for b in ids[a_pos + 1 :]:
                if a not in found or b not in found or iou(found[a].box, found[b].box)[0] < MIN_IOU:
                    continue
                means = [self.tracks[t].mean_descriptor() for t in (a, b)]
                if self.identity is not None and all(m is not None for m in means):
                    face = self._descriptors(rgb, [found[a].landmarks])[0]
                    cost = [np.linalg.norm(face - m) for m in means]
                else:
                    centre = _centre(found[a].box)
                    cost = [np.linalg.norm(centre - self._predicted(t)) for t in (a, b)]
                del found[b if cost[0] <= cost[1] else a]

    def _predicted(self, tid: int) -> np.ndarray:
        """Where track ``tid``'s box centre ``[2]`` should be in this frame (constant motion)."""
        track = self.tracks[tid]
        return _centre(track.box) + track.motion * (self._frame - track.seen)

    def _link_detections(self, image: np.ndarray, rgb: np.ndarray, found: dict[int, FaceFrame]) -> None:
        """Whole-frame detection: resume lost tracks and start new ones from unclaimed faces; in place."""
        self.detections += 1
        self._since_detect = 0
        detections = self.detector(image)
        confident = detections.scores >= self.count_score
        self._in_view = int(confident.sum())
        wide = detections.boxes[:, 2] - detections.boxes[:, 0] >= self.min_size_px
        claimed = np.zeros(len(detections.boxes), bool)
        for face in found.values():
            claimed |= iou(detections.boxes, face.box) >= MIN_IOU
        faces = []
        for k in np.flatnonzero(confident & wide & ~claimed):
            coarse = self.predictor(image, detections.boxes[k : k + 1])[0]
            refined = track_region(self.detector, self.predictor, image, coarse, self.count_score)
            faces.append(refined or FaceFrame(coarse, detections.boxes[k], float(detections.scores[k]), 1, True))
        if not faces:
            return
        # Larger faces first; the refined box measures the size finer than the detector's pyramid levels.
        faces.sort(key=lambda face: face.box[0] - face.box[2])
        lost = [tid for tid in range(len(self.tracks)) if tid not in found]
        described = self.identity is not None and any(self.tracks[t].descriptors for t in lost)
        descriptors = self._descriptors(rgb, [f.landmarks for f in faces]) if described else None
        cost = np.full((len(faces), len(lost)), np.inf)
        for j, tid in enumerate(lost):
            track = self.tracks[tid]
            width = track.box[2] - track.box[0]
            mean = track.mean_descriptor()
            for i, face in enumerate(faces):
                distance = np.linalg.norm(_centre(face.box) - _centre(track.box)) / width / POSITION_GATE
                if descriptors is not None and mean is not None:
                    id_cost = np.linalg.norm(descriptors[i] - mean) / ID_THRESHOLD
                    cost[i, j] = id_cost + distance if id_cost < 1 else np.inf
                elif distance < 1:
                    cost[i, j] = distance
        resumed = {}
        if len(lost):
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
            resumed = {i: lost[j] for i, j in zip(rows, cols, strict=True) if np.isfinite(cost[i, j])}
        for i, face in enumerate(faces):
            if len(found) >= self.max_faces:
                break
            if i in resumed:
                found[resumed[i]] = face
            elif not any(iou(face.box, f.box)[0] >= MIN_IOU for f in found.values()):
                self.tracks.append(_Track(None, face.box, np.zeros(2), self._frame))
                found[len(self.tracks) - 1] = face

    def _see(self, tid: int, face: FaceFrame, rgb: np.ndarray, found: dict[int, FaceFrame]) -> None:
        """Move track ``tid`` to this frame's ``face``; sample its descriptor when the face is clear and sure."""
        track = self.tracks[tid]
        gap = self._frame - track.seen
        followed = track.landmarks is not None and gap > 0  # tracked on from the last frame, not resumed
        track.motion = (_centre(face.box) - _centre(track.box)) / gap if followed else np.zeros(2)
        track.landmarks, track.box, track.seen = face.landmarks, face.box, self._frame
        clear = all(iou(face.box, other.box)[0] == 0 for t, other in found.items() if t != tid)
        if (
            self.identity is not None
            and clear
            and face.score >= self.count_score
            and len(track.descriptors) < DESCRIPTOR_FRAMES
            and self._frame - track.sampled >= DESCRIPTOR_EVERY
        ):
            track.descriptors.append(self._descriptors(rgb, [face.landmarks])[0])
            track.sampled = self._frame


def select_tracks(found: list[dict[int, FaceFrame]], max_faces: int, min_frames: int) -> list[list[FaceFrame | None]]:
    """The tracks worth keeping from a whole clip of :meth:`MultiFaceTracker.update` results.

    Args:
        found: per frame, track id -> :class:`~sg3pipe.faces.tracking.FaceFrame`.
        max_faces: keep at most this many tracks, those seen in the most frames (passers-by and false
            detections are seen in few).
        min_frames: keep only tracks seen in at least this many frames.

    Returns:
        One list per kept track, renumbered by first appearance: its ``FaceFrame`` in each frame, None where
        absent (``len(found)`` entries).
    """
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for t, frame in enumerate(found):
        for tid in frame:
            counts[tid] = counts.get(tid, 0) + 1
            first.setdefault(tid, t)
    kept = [tid for tid in sorted(counts, key=lambda k: (-counts[k], first[k])) if counts[tid] >= min_frames]
    kept = sorted(kept[:max_faces], key=lambda k: (first[k], k))
    return [[frame.get(tid) for frame in found] for tid in kept]
