"""The shipped synthetic generator's recipe: a teacher classifier, then generator stages, each started from the
previous one's weight average.

Why stages (issue 13 part 0, probes recorded in ``benchmarks/generator_probe.py``): a plain L2 distillation
learns hair, skin and background and leaves eyes, mouths and glasses (a few percent of the pixels) as blobs.

1. ``base``: the L2 distillation with a wider Fourier input band (``first_cutoff`` 8), from scratch. Faint spots
   where the eyes and mouth go.
2. ``landmarks``: the L2 weighted up on Gaussian blobs around landmarks 17-67 (brows, eyes, nose, mouth). Eyes
   with irises, brows and lips appear, but the same ones whatever ``z`` says.
3. ``attributes`` and ``attributes_strong``: a cross-entropy term of a renderer-trained classifier on the
   generator's image against the labels of ``face_params(z)``, which ties those features to ``z``.

The classifier of step 3 is a *teacher* trained here with another seed and width than the shipped classifier
(:mod:`sg3pipe.synth.classifier`), so that the shipped classifier, which measures the generator
(:func:`~sg3pipe.synth.generator_training.attribute_accuracy`), never took part in its training.
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
    """One training run of the chain. ``config.init_from`` and ``config.classifier`` are filled in by
    :func:`train_recipe` (the previous stage's generator; the teacher when ``uses_teacher``); ``stop_at`` ends
    the run at that step of its ``config.steps``-step schedule."""

    name: str
    config: GeneratorTrainingConfig
    stop_at: int | None = None
    uses_teacher: bool = False


# The classifier the shipped file was tested with before session 11 (git 8782404): narrower, seed 0.
TEACHER = ClassifierTrainingConfig(widths=(16, 32, 64, 128), steps=3000, seed=0, checkpoint_every=100)

SHIPPED_STAGES = (
    Stage("base", GeneratorTrainingConfig()),
    Stage("landmarks", GeneratorTrainingConfig(steps=6000, lr=3e-3, landmark_weight=10.0)),
    Stage(
        "attributes",
        GeneratorTrainingConfig(steps=8000, lr=3e-3, landmark_weight=20.0, attribute_lambda=0.02),
        stop_at=6000,
        uses_teacher=True,
    ),
    Stage(
        "attributes_strong",
        GeneratorTrainingConfig(steps=3000, lr=2e-3, landmark_weight=20.0, attribute_lambda=0.1),
        uses_teacher=True,
    ),
)


def train_recipe(
    work_dir: str | os.PathLike,
    stages: tuple[Stage, ...] = SHIPPED_STAGES,
    teacher: ClassifierTrainingConfig = TEACHER,
    device: str | torch.device = "cpu",
) -> Generator:
    """Train (or resume) every stage in turn under ``work_dir``; returns the last stage's ``G_ema``.

    Writes ``work_dir/teacher/classifier.safetensors`` (when a stage uses it) and, per stage,
    ``work_dir/{stage.name}/`` with its checkpoint, figures and ``G.safetensors``, the next stage's start. A
    rerun skips finished stages (their checkpoints are at their last step) and resumes the interrupted one.
    """
    work_dir = Path(work_dir).resolve()
    teacher_path = None
    if any(stage.uses_teacher for stage in stages):
        teacher_path = work_dir / "teacher" / "classifier.safetensors"
        if not teacher_path.exists():
            save_classifier(train_classifier(work_dir / "teacher", teacher, device), teacher_path)
    previous = None
    for stage in stages:
        cfg = replace(
            stage.config,
            init_from=previous,
            classifier=str(teacher_path) if stage.uses_teacher else None,
        )
        G = train_generator(work_dir / stage.name, cfg, device, stop_at=stage.stop_at)
        previous = str(save_generator(G, work_dir / stage.name / "G.safetensors"))
    return G
