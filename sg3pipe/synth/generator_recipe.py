"""The shipped synthetic generator's recipe: teacher classifiers, then generator stages, each started from the
previous one's weight average.

Why stages: a plain L2 distillation learns hair, skin and background and leaves eyes, mouths and glasses (a few
percent of the pixels) as blobs. The probe behind each stage and what it measured: docs/findings.md.

1. ``base``: the L2 distillation with a wider Fourier input band (``first_cutoff`` 8), from scratch. Faint spots
   where the eyes and mouth go.
2. ``landmarks``: the L2 weighted up on Gaussian blobs around landmarks 17-67 (brows, eyes, nose, mouth). Eyes
   with irises, brows and lips appear, but the same ones whatever ``z`` says.
3. ``attributes`` and ``attributes_strong``: a cross-entropy term of a renderer-trained classifier on the
   generator's image against the labels of ``face_params(z)``, which ties those features to ``z``.
4. ``attributes_ensemble``: the same term averaged over two teachers of different widths, so that patterns
   that fool one classifier and are no feature earn less.
5. ``attributes_shipped``: the shipped classifier (:mod:`sg3pipe.synth.classifier`, the model that measures the
   generator with :func:`~sg3pipe.synth.generator_training.attribute_accuracy`) joins the two teachers: a
   perceptual loss on the features of the project's own renderer-trained classifier. After stage 4 the shipped
   classifier reads smiling at 58% and glasses at 73%, where classifiers of other widths read 90%: it weighs fine
   detail that the generator draws softly.
6. ``attributes_rotated``: two teachers trained on degraded renders (resampled, blurred, noised: how a small
   generator's image looks) and the shipped classifier, one per step in turn, each reading the generator's image
   moved by a random similarity and blurred by up to 1 px. Before it, classifiers trained on degraded renders
   read the generator's glasses, smiles, closed eyes and open mouths at 67-83%, where the shipped classifier
   read 92-95%: the generator drew, for that classifier's family, fine patterns a softer reader does not see
   (glasses rims hardly drawn at all). After it, the soft teachers read those attributes at 89-94% and the
   shipped classifier at 86-94%.

Steps 3-4 and 6 use *teachers* trained here with other seeds than the shipped classifier. Since steps 5-6 train
against the shipped classifier too, its reading of the generator is not independent; the quality record adds the
readings of classifiers of other architectures that no stage uses (docs/synthetic-world.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from sg3pipe.networks.loading import save_generator
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.synth.classifier import ClassifierTrainingConfig, save_classifier, train_classifier
from sg3pipe.synth.generator_training import GeneratorTrainingConfig, train_generator


@dataclass(frozen=True)
class Stage:
    """One training run of the chain. ``config.init_from`` and ``config.classifiers`` are filled in by
    :func:`train_recipe` (the previous stage's generator; the named ``teachers``, keys of :data:`TEACHERS`);
    ``stop_at`` ends the run at that step of its ``config.steps``-step schedule."""

    name: str
    config: GeneratorTrainingConfig
    stop_at: int | None = None
    teachers: tuple[str, ...] = ()


# Degradations of the "soft" teachers' renders (three quarters of each batch resampled down to 50-100% of the size,
# blurred up to 1.5 px, noised up to 0.08): renders that look like a small generator's images, so that a feature
# the generator draws softly is still read, and one drawn in a few sharp pixels no real face part has is not.
SOFT_RENDERS = {"degraded_fraction": 0.75, "min_scale": 0.5, "max_blur_px": 1.5, "max_noise": 0.08}

# The teachers of the attribute term, none of them the shipped classifier that measures the generator:
# "narrow", narrower than the shipped classifier, and "wide", the shipped classifier's widths with another seed
# and fewer steps. The term averages over the teachers of a stage, so a pattern that fools one architecture and is
# no feature earns less than a drawn one. "soft_narrow" and "soft_wide" are the same architectures with other
# seeds, trained on renders degraded as SOFT_RENDERS says.
TEACHERS = {
    "narrow": ClassifierTrainingConfig(widths=(16, 32, 64, 128), steps=3000, seed=0, checkpoint_every=100),
    "wide": ClassifierTrainingConfig(widths=(24, 48, 96, 192), steps=3000, seed=3, checkpoint_every=100),
    "soft_narrow": ClassifierTrainingConfig(
        widths=(16, 32, 64, 128), steps=3000, seed=21, checkpoint_every=100, **SOFT_RENDERS
    ),
    "soft_wide": ClassifierTrainingConfig(
        widths=(24, 48, 96, 192), steps=3000, seed=22, checkpoint_every=100, **SOFT_RENDERS
    ),
}

# The teacher name of the shipped classifier: not trained here, given to train_recipe as a file.
SHIPPED_CLASSIFIER = "shipped"

SHIPPED_STAGES = (
    Stage("base", GeneratorTrainingConfig()),
    Stage("landmarks", GeneratorTrainingConfig(steps=6000, lr=3e-3, landmark_weight=10.0)),
    Stage(
        "attributes",
        GeneratorTrainingConfig(steps=8000, lr=3e-3, landmark_weight=20.0, attribute_lambda=0.02),
        stop_at=6000,
        teachers=("narrow",),
    ),
    Stage(
        "attributes_strong",
        GeneratorTrainingConfig(steps=3000, lr=2e-3, landmark_weight=20.0, attribute_lambda=0.1),
        teachers=("narrow",),
    ),
    Stage(
        "attributes_ensemble",
        GeneratorTrainingConfig(steps=3000, lr=2e-3, landmark_weight=20.0, attribute_lambda=0.1),
        teachers=("narrow", "wide"),
    ),
    Stage(
        "attributes_shipped",
        GeneratorTrainingConfig(steps=3000, lr=2e-3, landmark_weight=20.0, attribute_lambda=0.1),
        teachers=("narrow", "wide", SHIPPED_CLASSIFIER),
    ),
    Stage(
        "attributes_rotated",
        GeneratorTrainingConfig(
            steps=3000,
            lr=1e-3,
            landmark_weight=20.0,
            attribute_lambda=0.1,
            attribute_augment=1.0,
            attribute_soften_px=1.0,
            teachers_per_step=1,
        ),
        teachers=("soft_narrow", "soft_wide", SHIPPED_CLASSIFIER),
    ),
)


def train_recipe(
    work_dir: str | os.PathLike,
    stages: tuple[Stage, ...] = SHIPPED_STAGES,
    teachers: dict[str, ClassifierTrainingConfig] = TEACHERS,
    device: str | torch.device = "cpu",
    classifier: str | os.PathLike | None = None,
    init_from: str | os.PathLike | None = None,
) -> Generator:
    """Train (or resume) every stage in turn under ``work_dir``; returns the last stage's ``G_ema``.

    ``classifier`` is the shipped classifier's file, the teacher named :data:`SHIPPED_CLASSIFIER` (needed only
    when a stage names it). Writes ``work_dir/teachers/{name}/classifier.safetensors`` for each other teacher a
    stage names (trained from ``teachers[name]``) and, per stage, ``work_dir/{stage.name}/`` with its
    checkpoint, figures and ``G.safetensors``, the next stage's start. A rerun skips finished teachers and stages
    (their checkpoints are at their last step) and resumes the interrupted one. ``init_from``, a generator file,
    is the first stage's start (default: none, from scratch): ``stages=SHIPPED_STAGES[-1:]`` with the shipped
    generator continues it by its recipe's last stage.
    """
    work_dir = Path(work_dir).resolve()
    teacher_paths = {}
    for name in dict.fromkeys(name for stage in stages for name in stage.teachers):
        if name == SHIPPED_CLASSIFIER:
            if classifier is None or not Path(classifier).is_file():
                raise FileNotFoundError(
                    f"a stage trains against the shipped classifier, but its file {classifier} is missing: "
                    "build it with rule synth_classifier, or pass it as train_recipe(classifier=...)"
                )
            teacher_paths[name] = Path(classifier).resolve()
            continue
        teacher_paths[name] = work_dir / "teachers" / name / "classifier.safetensors"
        if not teacher_paths[name].exists():
            net = train_classifier(teacher_paths[name].parent, teachers[name], device)
            save_classifier(net, teacher_paths[name])
    previous = None if init_from is None else str(Path(init_from).resolve())
    for stage in stages:
        cfg = replace(
            stage.config,
            init_from=previous,
            classifiers=tuple(str(teacher_paths[name]) for name in stage.teachers),
        )
        G = train_generator(work_dir / stage.name, cfg, device, stop_at=stage.stop_at)
        previous = str(save_generator(G, work_dir / stage.name / "G.safetensors"))
    return G
