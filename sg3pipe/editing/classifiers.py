"""Attribute scorers: images -> the probability that each of a list of face attributes is present.

One small interface (:class:`AttributeScorer`) over kinds of model, built by :func:`load_scorer`; other packages
add kinds of their own with :func:`register_scorer_kind` (the synthetic world adds ``synthetic``):

- ``torch``: any TorchScript file, or a state dict of a torchvision classification model, with a short config
  saying how images are resized and normalised and how outputs become scores.
- ``anycost``: the official AnyCost-GAN attribute predictor (mit-han-lab/anycost-gan) that stylegan3-editing's
  InterFaceGAN scores its samples with (yuval-alaluf/stylegan3-editing
  ``editing/interfacegan/helpers/anycostgan.py`` and ``generate_latents_and_attribute_scores.py``): a
  torchvision ResNet-50 whose ``fc`` is ``Linear(2048, 80)``, 40 pairs of logits over the CelebA attributes;
  images are average-pooled to 256 x 256 and not normalised (they stay in [-1, 1]); the score of an attribute
  is the softmax of its pair, second entry.

State dicts are read weights-only (only tensors and plain containers unpickle). A TorchScript file is different:
``torch.jit.load`` runs the code graph stored in the file, so weights-only does not apply; use TorchScript files
only from sources you trust.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sg3pipe.io.errors import ModelFileError
from sg3pipe.io.official_pickle import load_torch_file

# The 40 CelebA attributes in the order of the AnyCost predictor's logit pairs (``attr_list`` of the official
# anycost-gan metrics/attribute_consistency.py and stylegan3-editing's interfacegan/helpers/anycostgan.py).
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
ANYCOST_RESOLUTION = 256  # the predictor's input side in pixels (the editing repo's AdaptiveAvgPool2d((256, 256)))
ANYCOST_EXPECTED = (
    "the AnyCost-GAN attribute predictor (attribute_predictor.pt from the anycost-gan project): a torch file whose "
    "'state_dict' holds a torchvision ResNet-50 with fc Linear(2048, 80)"
)
ACTIVATIONS = ("sigmoid", "softmax_pairs", "none")
TORCH_FORMATS = ("torchscript", "state_dict")
REFUSAL = "a state dict has no need of (only tensors and plain containers are allowed)"


def frozen(net: nn.Module) -> nn.Module:
    """``net`` in eval mode with no parameter gradients (gradients still reach the images when asked for)."""
    # Eval mode (batch norm uses its running statistics) and no parameter gradients; gradients still reach the
    # images when asked for. Parameter by parameter, because TorchScript modules have no requires_grad_().
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net.eval()


class ScorerFileError(ModelFileError):
    """An attribute classifier file cannot be used: corrupt, not the expected kind of file, or its weights do not
    fit the configured architecture."""

    kind = "attribute classifier"
    expected = (
        "an attribute classifier: a TorchScript file, or a torch state dict that fits the configured architecture"
    )


class AttributeScorer:
    """Images ``[N, 3, H, W]`` in [-1, 1] -> scores ``[N, K]`` in [0, 1], the probability that attribute
    ``names[k]`` is present (column ``k``). Subclasses implement :meth:`scores` (always differentiable)."""

    names: list[str]

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] -> ``[N, K]`` in [0, 1], with gradients to ``images``."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, differentiable: bool = False) -> torch.Tensor:
        """:meth:`scores` under ``torch.no_grad`` unless ``differentiable``; ``images`` on the model's device."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape [N, 3, H, W], got {list(images.shape)}")
        with contextlib.nullcontext() if differentiable else torch.no_grad():
            return self.scores(images)

    def score_dict(self, images: torch.Tensor, differentiable: bool = False) -> dict[str, torch.Tensor]:
        """The scores by attribute name: name -> ``[N]``."""
        scores = self(images, differentiable)
        return {name: scores[:, k] for k, name in enumerate(self.names)}


def outputs_needed(n_names: int, activation: str) -> int:
    """How many outputs per image a model needs for ``n_names`` attributes under ``activation``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    return 2 * n_names if activation == "softmax_pairs" else n_names


class TorchModelScorer(AttributeScorer):
    """A torch model: images resized to ``input_size`` (bilinear, antialiased), mapped to [0, 1], normalised by
    ``mean`` and ``std`` when given, run through ``net``, and its outputs turned into scores by ``activation``:

    - ``sigmoid``: ``K`` logits, scores ``sigmoid(logits)``;
    - ``softmax_pairs``: ``2K`` logits read as ``[K, 2]`` pairs (absent, present), scores ``softmax(pair)[1]``;
    - ``none``: ``K`` outputs that already are probabilities.
    """

    def __init__(
        self,
        net: nn.Module,
        names: list[str],  # K attribute names, in the order of the model's outputs
        input_size: int,  # side in pixels of the square images the model takes
        mean: list[float] | None = None,  # per-channel mean subtracted from images in [0, 1]; None: no normalisation
        std: list[float] | None = None,  # per-channel standard deviation they are divided by
        activation: str = "sigmoid",  # one of ACTIVATIONS
        source: str = "(in memory)",  # the model's file, for error messages
    ):
        if (mean is None) != (std is None) or (mean is not None and (len(mean) != 3 or len(std) != 3)):
            raise ValueError(f"mean and std must both be 3 numbers or both be omitted, got {mean!r} and {std!r}")
        self.net = frozen(net)
        self.names = list(names)
        self.input_size = int(input_size)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.activation = activation
        self.source = source
        self.n_outputs = outputs_needed(len(self.names), activation)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] -> ``[N, 3, input_size, input_size]`` as the model takes them."""
        size = (self.input_size, self.input_size)
        if images.shape[-2:] != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        images = (images + 1) / 2
        if self.mean is not None:
            images = (images - self.mean.to(images.device)) / self.std.to(images.device)
        return images

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        outputs = self.net(self.preprocess(images))
        if outputs.ndim != 2 or outputs.shape[1] != self.n_outputs:
            problem = (
                f"gives outputs of shape {list(outputs.shape)}; {len(self.names)} output_names with activation "
                f"'{self.activation}' need [N, {self.n_outputs}]"
            )
            raise ScorerFileError(self.source, problem)
        if self.activation == "sigmoid":
            return torch.sigmoid(outputs)
        if self.activation == "softmax_pairs":
            return outputs.view(len(outputs), -1, 2).softmax(dim=2)[..., 1]
        return outputs


class AnyCostScorer(AttributeScorer):
    """The AnyCost attribute predictor: images average-pooled to 256 x 256 (no normalisation), a ResNet-50 with 80
    outputs read as 40 pairs ``[N, 40, 2]``, scores ``softmax(pair)[1]``; names :data:`CELEBA_ATTRIBUTES`.

    As in the editing repo, pooling is adaptive average pooling, so images smaller than 256 are upsampled by
    repeating pixels; for the predictor's intended use pass generator outputs of 256 px or more.
    """

    def __init__(self, net: torchvision.models.ResNet):
        self.net = frozen(net)
        self.names = list(CELEBA_ATTRIBUTES)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.net(F.adaptive_avg_pool2d(images, (ANYCOST_RESOLUTION, ANYCOST_RESOLUTION)))
        return logits.view(len(logits), len(self.names), 2).softmax(dim=2)[..., 1]


def anycost_resnet50() -> torchvision.models.ResNet:
    """An untrained network of the AnyCost predictor's architecture: torchvision ResNet-50, fc ``Linear(2048, 80)``."""
    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Linear(net.fc.in_features, 2 * len(CELEBA_ATTRIBUTES))
    return net


def _existing_file(path: str | os.PathLike, expected: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"attribute classifier file {path} does not exist; set the scorer's 'path' to {expected}"
        )
    return path


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = sorted(map(str, obj))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(obj).__name__}"


def _strip_module_prefix(state_dict: Mapping) -> dict:
    # A network trained under DataParallel saves every key as "module.<key>".
    return {str(key).removeprefix("module."): value for key, value in state_dict.items()}


def _load_weights(net: nn.Module, state_dict: Mapping, path: Path, error, what: str) -> nn.Module:
    """Copy ``state_dict`` into ``net`` after checking every key and shape; a mismatch is one ``error`` that
    names the first offending key (``what`` describes ``net`` in the message)."""
    expected = net.state_dict()
    missing = [key for key in expected if key not in state_dict]
    if missing:
        raise error(path, f"has no '{missing[0]}' ({len(missing)} of the {len(expected)} tensors of {what} missing)")
    unexpected = [key for key in state_dict if key not in expected]
    if unexpected:
        raise error(path, f"holds '{unexpected[0]}', which {what} does not have ({len(unexpected)} unexpected keys)")
    for key, reference in expected.items():
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            raise error(path, f"holds a {type(value).__name__} under '{key}', not a tensor")
        if value.shape != reference.shape:
            shape, needed = list(value.shape), list(reference.shape)
            raise error(path, f"has '{key}' of shape {shape}; {what} needs {key} {needed}")
    net.load_state_dict(state_dict)
    return net


def load_anycost_scorer(path: str | os.PathLike, device: str | torch.device = "cpu") -> AnyCostScorer:
    """The AnyCost attribute predictor from its checkpoint (``{"state_dict": ResNet-50 weights}``; keys may carry
    DataParallel's ``module.`` prefix), read weights-only.

    Raises:
        FileNotFoundError: no file at ``path``.
        ScorerFileError: corrupt, no ``state_dict``, or weights that are not the predictor's ResNet-50.
    """
    path = _existing_file(path, ANYCOST_EXPECTED)
    error = functools.partial(ScorerFileError, expected=ANYCOST_EXPECTED)
    checkpoint = load_torch_file(path, error, REFUSAL)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise error(path, f"is a torch file holding {_describe(checkpoint)}, with no 'state_dict'")
    what = "a ResNet-50 with fc Linear(2048, 80)"
    net = _load_weights(anycost_resnet50(), _strip_module_prefix(checkpoint["state_dict"]), path, error, what)
    return AnyCostScorer(net.to(device))


def _load_torchscript(path: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():
            # torch >= 2.9 marks torch.jit as deprecated; TorchScript files are still what many models ship as.
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as err:
        reason = str(err).splitlines()[0].split(". ")[0] if str(err) else type(err).__name__
        raise ScorerFileError(path, f"is not a readable TorchScript file ({reason})") from None


def _load_torchvision_state_dict(path: Path, architecture: str, n_outputs: int) -> nn.Module:
    if architecture not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"architecture {architecture!r} is not a torchvision classification model "
            "(e.g. 'resnet18', 'resnet50', 'mobilenet_v3_small'); set the scorer's 'architecture'"
        )
    net = getattr(torchvision.models, architecture)(weights=None, num_classes=n_outputs)
    obj = load_torch_file(path, ScorerFileError, REFUSAL)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ScorerFileError(path, f"is a torch file holding {_describe(obj)}, not a state dict")
    what = f"a torchvision {architecture} with {n_outputs} outputs"
    return _load_weights(net, _strip_module_prefix(obj), path, ScorerFileError, what)


def load_torch_model_scorer(config: Mapping, device: str | torch.device = "cpu") -> TorchModelScorer:
    """A :class:`TorchModelScorer` from a config dict:

    - ``path``: the model file;
    - ``format``: ``torchscript`` (``torch.jit.load``: runs the file's code graph, so trust the file) or
      ``state_dict`` (read weights-only; a bare state dict or ``{"state_dict": ...}``);
    - ``architecture``: for ``state_dict``, a torchvision classification model name such as ``resnet18``, built
      with ``num_classes`` = K (``2K`` for ``softmax_pairs``);
    - ``input_size``: side in pixels the images are resized to;
    - ``mean``, ``std``: 3 numbers each, applied to images mapped to [0, 1] (omit both for none; 0.5 and 0.5
      give the model images in [-1, 1]);
    - ``output_names``: the K attribute names in output order;
    - ``activation``: ``sigmoid`` (default), ``softmax_pairs`` or ``none`` (see :class:`TorchModelScorer`).

    Raises:
        ValueError: a missing, unknown or invalid config key.
        FileNotFoundError: no file at ``path``.
        ScorerFileError: the file is corrupt or its weights do not fit the architecture.
    """
    keys = {"path", "format", "architecture", "input_size", "mean", "std", "output_names", "activation"}
    unknown = sorted(set(config) - keys)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in a torch scorer config; it takes {sorted(keys)}")
    missing = [key for key in ("path", "format", "input_size", "output_names") if key not in config]
    if config.get("format") == "state_dict" and "architecture" not in config:
        missing.append("architecture")
    if missing:
        raise ValueError(f"a torch scorer config needs {missing}")
    fmt = config["format"]
    if fmt not in TORCH_FORMATS:
        raise ValueError(f"format must be one of {list(TORCH_FORMATS)}, got {fmt!r}")
    names, activation = list(config["output_names"]), config.get("activation", "sigmoid")
    n_outputs = outputs_needed(len(names), activation)
    path = _existing_file(config["path"], f"{ScorerFileError.expected} (format '{fmt}')")
    if fmt == "torchscript":
        net = _load_torchscript(path)
    else:
        net = _load_torchvision_state_dict(path, config["architecture"], n_outputs)
    mean, std = config.get("mean"), config.get("std")
    return TorchModelScorer(net.to(device), names, config["input_size"], mean, std, activation, str(path))


def load_scorer(spec: Mapping, device: str | torch.device = "cpu") -> AttributeScorer:
    """The scorer a spec describes: ``{"kind": ..., "path": ..., ...}`` with a kind of :func:`scorer_kinds`:
    ``torch`` takes the config keys of :func:`load_torch_model_scorer`; ``anycost``, and kinds other packages
    register (:func:`register_scorer_kind`, e.g. the synthetic world's ``synthetic`` on ``import sg3pipe.synth``),
    take only ``kind`` and ``path``.

    Raises:
        ValueError: an unknown kind or key.
        FileNotFoundError: no file at ``path``.
        ModelFileError: the file cannot be used.
    """
    kind, rest = _kind_of(spec)
    if kind == "torch":
        return load_torch_model_scorer(rest, device)
    return _KINDS[kind].load(rest["path"], device)


def scorer_names(spec: Mapping) -> list[str]:
    """The attribute names a spec's scorer scores, in the order of its outputs, without loading its weights."""
    kind, rest = _kind_of(spec)
    if kind == "torch":
        return list(rest.get("output_names") or [])
    return list(_KINDS[kind].names(rest["path"]))


@dataclass(frozen=True)
class ScorerKind:
    """How a kind of scorer file is read: ``load(path, device) -> AttributeScorer`` and ``names(path) -> list``
    (its attribute names, read cheaply)."""

    load: Callable[[str, str | torch.device], AttributeScorer]
    names: Callable[[str], list[str]]


_KINDS: dict[str, ScorerKind] = {
    "anycost": ScorerKind(load_anycost_scorer, lambda path: list(CELEBA_ATTRIBUTES)),
}


def register_scorer_kind(kind: str, scorer_kind: ScorerKind) -> None:
    """Make ``{"kind": kind, "path": ...}`` specs load with ``scorer_kind`` (a plug-in's scorer files)."""
    _KINDS[kind] = scorer_kind


def scorer_kinds() -> list[str]:
    """The scorer kinds :func:`load_scorer` reads now."""
    return ["torch", *_KINDS]


def _kind_of(spec: Mapping) -> tuple[str, dict]:
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind != "torch" and kind not in _KINDS:
        raise ValueError(f"scorer kind must be one of {scorer_kinds()}, got {kind!r}")
    if kind != "torch" and set(spec) != {"path"}:
        raise ValueError(f"a '{kind}' scorer spec takes only 'kind' and 'path', got {sorted(spec)}")
    return kind, spec
