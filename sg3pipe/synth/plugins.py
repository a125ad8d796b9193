"""How the synthetic world plugs into the library, as real weights do: its classifier as the attribute scorer
kind ``synthetic`` (registered with :func:`sg3pipe.editing.classifiers.register_scorer_kind` when
``sg3pipe.synth`` is imported), the renderer's true parameters as a DCI factor table, and its aligned renders as
an encoder training source. The library's editing and training code never imports ``sg3pipe.synth``."""

from __future__ import annotations

import numpy as np
import torch

from sg3pipe.editing.classifiers import AttributeScorer, ScorerKind, frozen, register_scorer_kind
from sg3pipe.encoder_training import ImageSource
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.synth.classifier import SynthAttributeNet, classifier_names, load_classifier
from sg3pipe.synth.params import PARAM_INDEX, face_params
from sg3pipe.synth.renderer import LABELS, render


class SynthScorer(AttributeScorer):
    """The synthetic world's classifier: scores ``sigmoid(net(images))``, names ``net.names``."""

    def __init__(self, net: SynthAttributeNet):
        self.net = frozen(net)
        self.names = list(net.names)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(images))


def load_synthetic_scorer(path: str, device: str | torch.device = "cpu") -> SynthScorer:
    """The scorer of a classifier file written by :func:`sg3pipe.synth.classifier.save_classifier`."""
    return SynthScorer(load_classifier(path, device))


def renderer_factors(z: np.ndarray) -> np.ndarray:
    """The renderer's true parameter behind each attribute of :data:`sg3pipe.synth.renderer.LABELS`, for
    generator latents ``z [N, z_dim]``: ``[N, len(LABELS)]`` float32 (the DCI table's ``renderer`` factors)."""
    params = face_params(torch.from_numpy(np.asarray(z))).numpy()
    return params[:, [PARAM_INDEX[param] for param, _, _ in LABELS.values()]]


def synthetic_source(G: Generator) -> ImageSource:
    """The synthetic world's aligned faces: renderer images at the identity pose (what alignment produces)
    of ``z ~ N(0, I)``, with the latents ``G.mapping(z)`` that the generator was distilled to draw them with."""

    def sample(n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, G.z_dim, generator=rng)
        with torch.no_grad():
            ws = G.mapping(z.to(G.mapping.w_avg.device)).cpu()
        return render(face_params(z), G.img_resolution).images, ws

    return sample


register_scorer_kind("synthetic", ScorerKind(load_synthetic_scorer, classifier_names))
