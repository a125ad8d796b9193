"""Rule file ``rules/encode.smk``: invert every usable aligned frame of a video into a W+ latent
(:func:`sg3pipe.inversion.invert_video`)."""

from __future__ import annotations


def encode(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """``frames.parquet`` + ``aligned.mkv`` (+ ``crops.mkv``) -> ``latents.parquet``.

    Args:
        inputs: ``table`` (frames.parquet), ``aligned``, ``crops``, ``model`` (the encoder, or the generator for
            the projector).
        outputs: ``table`` (latents.parquet).
        config: sections ``encode`` and ``device``. With ``encode.render_with_transform`` every frame is also
            rendered with its crop transform and scored against ``crops``.
    """
    from sg3pipe.inversion import invert_video

    invert_video(
        inputs["table"],
        inputs["aligned"],
        outputs["table"],
        config={"encode": config["encode"], "device": config["device"]},
        model_file=inputs["model"],
        crops_video=inputs["crops"] if config["encode"]["render_with_transform"] else None,
    )
