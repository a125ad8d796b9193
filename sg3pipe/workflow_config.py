"""The workflow's config checked as a whole when the workflow is parsed, before any job runs.

The schema checks each value on its own; this module checks what the schema cannot: settings that must agree
with the model files (the crop size is the generator's resolution, the encoder inverts into that generator, the
edits name directions that direction finding will write) and settings that cannot work together. Each problem is
one error naming the setting, the file and the fix, raised at parse time instead of hours later in a job.

Model files are read by their headers only (:func:`sg3pipe.networks.loading.read_generator_config`,
:func:`sg3pipe.networks.restyle.read_decoder_config`, metadata and shapes), so the checks cost milliseconds for
sg3pipe's files and one read of the file for an official pickle.
"""

from __future__ import annotations

import os
from pathlib import Path

from sg3pipe.editing.directions import MIN_PER_SIDE

# Generator constructor arguments that make two generators the same network shape (with their defaults).
ARCHITECTURE = {"img_resolution": None, "w_dim": None, "num_layers": 14, "conv_kernel": 3, "use_radial_filters": False}


def resolve_config(config: dict, workflow_dir: str | os.PathLike) -> dict:
    """Check ``config`` (already validated by the schema) and fill the settings that follow from the model files,
    in place; returns ``config``.

    Filled: ``align.size`` when null (the generator's resolution); ``analysis.renderer_factors`` when null (true
    exactly when the scorer is the synthetic world's classifier, whose samples come from the renderer).

    Raises:
        ValueError: settings that disagree with the model files or with each other (the message names the keys,
            the files and the fix).
        FileNotFoundError: ``align.size`` is null and the generator file does not exist.
        sg3pipe.io.errors.ModelFileError: a model file is not what its key says.
    """
    generator = _generator_config(config, workflow_dir)
    _check_align_size(config, generator)
    _check_encoder(config, workflow_dir, generator)
    _check_directions(config)
    _check_edits(config, workflow_dir)
    if config["analysis"].get("renderer_factors") is None:
        config["analysis"]["renderer_factors"] = config["models"]["scorer"]["kind"] == "synthetic"
    return config


def _path(workflow_dir: str | os.PathLike, path: str) -> Path:
    path = Path(path)
    return path if path.is_absolute() else Path(workflow_dir) / path


def _generator_config(config: dict, workflow_dir) -> dict | None:
    """The constructor arguments of models.generator, or None when the file does not exist (yet)."""
    from sg3pipe.networks.loading import read_generator_config

    path = _path(workflow_dir, config["models"]["generator"])
    if not path.exists():
        if config["align"].get("size") is None:
            raise FileNotFoundError(
                f"models.generator {path} does not exist, and align.size (null) follows the generator's resolution: "
                "point models.generator at a generator file (an official .pkl, an editing-repo .pt or an sg3pipe "
                ".safetensors)"
            )
        return None
    return read_generator_config(path)


def _check_align_size(config: dict, generator: dict | None) -> None:
    align = config["align"]
    if generator is None:
        return
    resolution = generator["img_resolution"]
    if align.get("size") is None:
        align["size"] = resolution
    elif align["size"] != resolution:
        raise ValueError(
            f"align.size is {align['size']} but models.generator ({config['models']['generator']}) renders "
            f"{resolution}x{resolution}: the crops must be the generator's size; remove align.size from your config "
            f"(it then follows the generator) or set it to {resolution}"
        )


def _architecture(generator: dict) -> dict:
    return {key: generator.get(key, default) for key, default in ARCHITECTURE.items()}


def _check_encoder(config: dict, workflow_dir, generator: dict | None) -> None:
    from sg3pipe.networks.restyle import read_decoder_config

    encoder = config["models"].get("encoder")
    if config["encode"]["method"] != "encoder" or not encoder or generator is None:
        return
    path = _path(workflow_dir, encoder)
    if not path.exists():
        return  # Snakemake names the missing input of rule encode
    decoder, expected = _architecture(read_decoder_config(path)), _architecture(generator)
    if decoder != expected:
        differ = ", ".join(
            f"{key} {decoder[key]} vs {expected[key]}" for key in decoder if decoder[key] != expected[key]
        )
        raise ValueError(
            f"models.encoder ({encoder}) inverts into a different generator than models.generator "
            f"({config['models']['generator']}): {differ}. An encoder only works with the generator it was trained "
            "for: point models.encoder at that generator's encoder (e.g. restyle_e4e_ffhq.pt for the FFHQ "
            "StyleGAN3 weights), train one with rule train_encoder, or use --config encode='{method: projector}'"
        )


def _check_directions(config: dict) -> None:
    directions = config["directions"]
    samples, ratio = directions["samples"], directions["ratio"]
    if int(samples * ratio) < MIN_PER_SIDE:
        raise ValueError(
            f"directions.samples {samples} at directions.ratio {ratio} keep {int(samples * ratio)} samples on each "
            f"side of the score ranking; the SVM needs at least {MIN_PER_SIDE}: raise directions.samples to "
            f"{-(-MIN_PER_SIDE // ratio):.0f} or directions.ratio to {MIN_PER_SIDE / samples:.3g}"
        )


def _check_edits(config: dict, workflow_dir) -> None:
    """Every edit names a direction that rule directions writes."""
    from sg3pipe.editing.classifiers import scorer_names
    from sg3pipe.stages import scorer_kinds_registered

    scorer_kinds_registered()
    if not config["edits"]:
        return
    directions = config["directions"]
    scorer = config["models"]["scorer"]
    scorer_path = _path(workflow_dir, scorer["path"])
    if scorer["kind"] != "torch" and not scorer_path.exists():
        return  # Snakemake names the missing input of rule direction_samples
    attributes = scorer_names({**scorer, "path": str(scorer_path)})
    names = {*attributes, *(f"{a}.s" for a in attributes), *(directions.get("pretrained") or {})}
    if directions["conditional"] and len(attributes) > 1:
        names |= {f"{a}.cond" for a in attributes}
    names |= {f"{text}.s" for text in ((directions.get("styleclip") or {}).get("texts") or {})}
    unknown = [edit["direction"] for edit in config["edits"] if edit["direction"] not in names]
    if unknown:
        raise ValueError(
            f"edits name directions {unknown} that direction finding does not write: models.scorer "
            f"({scorer['kind']}, {scorer['path']}) scores {attributes}; an edit's direction is one of these "
            "attributes, '{attribute}.s' (StyleSpace), '{attribute}.cond' (with directions.conditional), a key of "
            "directions.pretrained or '{text}.s' of directions.styleclip.texts. Set `edits:` in your config to the "
            "scorer's attributes"
        )
