"""Rule file ``rules/frames.smk``: decode a video, find its face in every frame, write the aligned and unaligned
crops and the per-frame table (:func:`sg3pipe.frames.build_frames`)."""

from __future__ import annotations


def frames(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """One video -> ``frames.parquet``, ``aligned.mkv``, ``crops.mkv``.

    Args:
        inputs: ``video``; optional ``landmarks`` (a landmarks table) and ``face_track`` (a VoxCeleb track file).
        outputs: ``table``, ``aligned``, ``crops``.
        config: sections ``ingest``, ``landmarks``, ``faces``, ``align``, and ``clip`` (the manifest's ``start_s``,
            ``end_s``, ``max_frames`` of this video).
    """
    from sg3pipe.frames import build_frames

    build_frames(
        inputs["video"],
        outputs["table"],
        outputs["aligned"],
        outputs["crops"],
        config={key: config[key] for key in ("ingest", "landmarks", "faces", "align")},
        landmarks=inputs.get("landmarks"),
        face_track=inputs.get("face_track"),
        **config.get("clip", {}),
    )
