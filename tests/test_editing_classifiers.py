"""Attribute scorers: the AnyCost predictor's layout, TorchScript and torchvision state-dict models with their
preprocessing, the synthetic classifier, and one clear error for every unusable file."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import assert_close_to_scale
from torch import nn

from sg3pipe.editing.classifiers import ScorerFileError, load_scorer, scorer_names
from sg3pipe.synth.classifier import SynthAttributeNet, save_classifier

# The 40 attributes in the order of the predictor's logit pairs, as in the official anycost-gan
# metrics/attribute_consistency.py (attr_list), written out here independently of the module's constant.
CELEBA = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
]  # fmt: skip
TOL_SAME_MATH = 1e-5  # the same operations on the same weights, relative to the largest score
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def random_images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def randomise_batch_norm(net: nn.Module, seed: int) -> nn.Module:
    """Non-trivial running statistics, so that a scorer left in training mode would give other scores."""
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=gen) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def anycost(tmp_path_factory):
    """A random ResNet-50 with fc 2048 -> 80 saved as the official checkpoint ``{"state_dict": sd}``, and again
    with DataParallel's ``module.`` prefixes."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Linear(2048, 80)
    randomise_batch_norm(net, seed=1)
    folder = tmp_path_factory.mktemp("anycost")
    plain, prefixed = folder / "attribute_predictor.pt", folder / "attribute_predictor_dp.pt"
    state_dict = net.state_dict()
    torch.save({"state_dict": state_dict}, plain)
    torch.save({"state_dict": {f"module.{key}": value for key, value in state_dict.items()}}, prefixed)
    return net, state_dict, plain, prefixed


def anycost_direct(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The editing repo's computation: AdaptiveAvgPool2d((256, 256)), the ResNet, view [N, 40, 2], softmax."""
    with torch.no_grad():
        logits = net(nn.AdaptiveAvgPool2d((256, 256))(images)).view(-1, 40, 2)
    return torch.softmax(logits, dim=2)[..., 1]


@pytest.mark.parametrize("size, n", [(64, 2), (512, 1)])
def test_anycost_scores_are_the_official_computation(anycost, size, n):
    net, _, plain, _ = anycost
    scorer = load_scorer({"kind": "anycost", "path": str(plain)})
    assert scorer.names == CELEBA
    images = random_images(n, size, seed=size)
    scores = scorer(images)
    assert scores.shape == (n, 40) and not scores.requires_grad
    assert ((scores >= 0) & (scores <= 1)).all()
    expected = anycost_direct(net, images)
    assert 0.01 < expected.std() and expected.min() < 0.99 and expected.max() > 0.01  # not saturated
    assert_close_to_scale(scores, expected, TOL_SAME_MATH)
    by_name = scorer.score_dict(images)
    assert list(by_name) == CELEBA
    torch.testing.assert_close(by_name["Smiling"], scores[:, 31], rtol=0, atol=0)


def test_anycost_module_prefixes_are_stripped(anycost):
    _, state_dict, _, prefixed = anycost
    loaded = load_scorer({"kind": "anycost", "path": prefixed}).net.state_dict()
    assert list(loaded) == list(state_dict)
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value), key


def test_anycost_unusable_files_are_one_clear_error_each(anycost, tmp_path):
    _, state_dict, plain, _ = anycost
    missing = tmp_path / "attribute_predictor.pt"
    with pytest.raises(FileNotFoundError, match=r"attribute_predictor\.pt does not exist; set the scorer's 'path'"):
        load_scorer({"kind": "anycost", "path": missing})

    no_state_dict = tmp_path / "no_state_dict.pt"
    torch.save({"model": {"fc.weight": torch.zeros(80, 2048)}}, no_state_dict)
    with pytest.raises(ScorerFileError, match=r"no_state_dict\.pt: .*dict with keys \['model'\], with no 'state_dict'"):
        load_scorer({"kind": "anycost", "path": no_state_dict})

    wrong_fc = tmp_path / "wrong_fc.pt"
    torch.save({"state_dict": {**state_dict, "fc.weight": torch.zeros(40, 2048), "fc.bias": torch.zeros(40)}}, wrong_fc)
    with pytest.raises(ScorerFileError, match=r"wrong_fc\.pt: has 'fc.weight' of shape \[40, 2048\]; .*\[80, 2048\]"):
        load_scorer({"kind": "anycost", "path": wrong_fc})

    not_resnet = tmp_path / "not_resnet.pt"
    torch.save({"state_dict": {"conv.weight": torch.zeros(3)}}, not_resnet)
    with pytest.raises(ScorerFileError, match=r"not_resnet\.pt: has no 'conv1.weight'"):
        load_scorer({"kind": "anycost", "path": not_resnet})

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(plain.read_bytes()[: 1 << 20])
    with pytest.raises(ScorerFileError, match=r"truncated\.pt: is a truncated or corrupt torch file"):
        load_scorer({"kind": "anycost", "path": truncated})


class MakesFolder:
    """Unpickled by plain torch.load, this would create a folder: the refusal must come before anything runs."""

    def __init__(self, folder: str):
        self.folder = folder

    def __reduce__(self):
        return os.makedirs, (self.folder,)


def test_forbidden_globals_are_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "created_by_the_pickle"
    hostile = tmp_path / "hostile.pt"
    torch.save({"state_dict": {}, "payload": MakesFolder(str(marker))}, hostile)
    with pytest.raises(ScorerFileError, match=r"hostile\.pt: refused to load: .*'(os|posix)\.makedirs'"):
        load_scorer({"kind": "anycost", "path": hostile})
    assert not marker.exists()
    with_opts = tmp_path / "with_opts.pt"
    torch.save({"state_dict": {}, "opts": argparse.Namespace(size=256)}, with_opts)
    with pytest.raises(ScorerFileError, match=r"with_opts\.pt: refused to load: .*'argparse\.Namespace'"):
        load_scorer({"kind": "anycost", "path": with_opts})


def preprocess_by_hand(images, size, mean=None, std=None):
    x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = (x + 1) / 2
    if mean is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x


@pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")  # torch >= 2.9 marks torch.jit deprecated
def test_torchscript_model_is_resized_normalised_and_read_in_pairs(tmp_path):
    torch.manual_seed(2)
    # The linear layer takes exactly 3 x 16 x 16 inputs: the model fails unless images are resized to 16.
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4)).eval()
    path = tmp_path / "pairs.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    spec = {
        "kind": "torch", "path": str(path), "format": "torchscript", "input_size": 16, "mean": mean, "std": std,
        "output_names": ["smile", "glasses"], "activation": "softmax_pairs",
    }  # fmt: skip
    scorer = load_scorer(spec)
    assert scorer.names == ["smile", "glasses"]
    images = random_images(3, 40, seed=4)
    scores = scorer(images)
    with torch.no_grad():
        expected = model(preprocess_by_hand(images, 16, mean, std)).view(3, 2, 2).softmax(dim=2)[..., 1]
        unnormalised = model(preprocess_by_hand(images, 16)).view(3, 2, 2).softmax(dim=2)[..., 1]
    assert scores.shape == (3, 2)
    assert_close_to_scale(scores, expected, TOL_SAME_MATH)
    assert (scores - unnormalised).abs().max() > 0.01  # the normalisation matters to what is compared

    wrong_width = load_scorer({**spec, "output_names": ["smile", "glasses", "age"]})
    with pytest.raises(ScorerFileError, match=r"pairs\.pt: gives outputs of shape \[3, 4\]; 3 output_names .*\[N, 6\]"):
        wrong_width(images)


def test_resnet18_state_dict_with_config(tmp_path):
    torch.manual_seed(5)
    net = randomise_batch_norm(torchvision.models.resnet18(weights=None, num_classes=3), seed=6)
    path = tmp_path / "resnet18_attributes.pth"
    torch.save(net.state_dict(), path)
    spec = {
        "kind": "torch", "path": path, "format": "state_dict", "architecture": "resnet18", "input_size": 64,
        "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "output_names": ["a", "b", "c"], "activation": "sigmoid",
    }  # fmt: skip
    scorer = load_scorer(spec)
    assert scorer.names == ["a", "b", "c"]
    images = random_images(2, 96, seed=7)
    with torch.no_grad():
        expected = torch.sigmoid(net(preprocess_by_hand(images, 64, IMAGENET_MEAN, IMAGENET_STD)))
        unnormalised = torch.sigmoid(net(preprocess_by_hand(images, 64)))
    scores = scorer(images)
    assert scores.shape == (2, 3)
    assert_close_to_scale(scores, expected, TOL_SAME_MATH)
    assert (scores - unnormalised).abs().max() > 0.01

    with pytest.raises(ScorerFileError, match=r"resnet18_attributes\.pth: has no 'layer1\.2\.conv1\.weight'"):
        load_scorer({**spec, "architecture": "resnet34"})
    with pytest.raises(ScorerFileError, match=r"resnet18_attributes\.pth: has 'fc\.weight' of shape \[3, 512\]"):
        load_scorer({**spec, "activation": "softmax_pairs"})
    with pytest.raises(ValueError, match="'resnet_18' is not a torchvision classification model"):
        load_scorer({**spec, "architecture": "resnet_18"})
    with pytest.raises(FileNotFoundError, match=r"elsewhere\.pth does not exist; set the scorer's 'path'"):
        load_scorer({**spec, "path": tmp_path / "elsewhere.pth"})
    with pytest.raises(ScorerFileError, match=r"resnet18_attributes\.pth: is not a readable TorchScript file"):
        load_scorer({**spec, "format": "torchscript"})
    with pytest.raises(ValueError, match=r"unknown keys \['mena'\]"):
        load_scorer({**spec, "mena": IMAGENET_MEAN})


def test_synthetic_scorer_is_the_sigmoid_of_the_classifiers_logits(tmp_path):
    torch.manual_seed(8)
    names = ["smile", "glasses", "beard", "hair_long", "male", "eyes_closed"]
    net = randomise_batch_norm(SynthAttributeNet(names), seed=9)
    path = save_classifier(net, tmp_path / "classifier.safetensors")
    scorer = load_scorer({"kind": "synthetic", "path": str(path)})
    assert scorer.names == names
    images = random_images(4, 64, seed=10)
    with torch.no_grad():
        expected = torch.sigmoid(net(images))
    assert_close_to_scale(scorer(images), expected, TOL_SAME_MATH)

    # Gradients only when asked for, and then they reach the images.
    assert not scorer(images).requires_grad
    leaf = images.clone().requires_grad_(True)
    scorer(leaf, differentiable=True)[:, 0].sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0
    assert all(p.grad is None for p in scorer.net.parameters())

    with pytest.raises(ValueError, match=r"takes only 'kind' and 'path'"):
        load_scorer({"kind": "synthetic", "path": str(path), "input_size": 64})
    with pytest.raises(ValueError, match="scorer kind must be"):
        load_scorer({"kind": "clip", "path": str(path)})
    with pytest.raises(ValueError, match=r"shape \[N, 3, H, W\]"):
        scorer(images[0])


def test_scorer_names_are_read_without_the_weights(tmp_path):
    names = ["smile", "glasses"]
    path = save_classifier(SynthAttributeNet(names), tmp_path / "classifier.safetensors")
    assert scorer_names({"kind": "synthetic", "path": str(path)}) == names
    assert scorer_names({"kind": "anycost", "path": str(tmp_path / "not-read.pt")})[31] == "Smiling"
    assert scorer_names({"kind": "torch", "path": "x", "output_names": ["a", "b"]}) == ["a", "b"]


def test_the_editing_and_training_code_does_not_know_the_synthetic_world():
    # The synthetic world plugs in (its scorer kind registers on import of sg3pipe.synth); the library's editing,
    # training and analysis modules import nothing of it.
    code = (
        "import importlib, pkgutil, sys, sg3pipe.editing\n"
        "names = [m.name for m in pkgutil.iter_modules(sg3pipe.editing.__path__, 'sg3pipe.editing.')]\n"
        "names += ['sg3pipe.encoder_training', 'sg3pipe.inversion', 'sg3pipe.pti', 'sg3pipe.render.videos']\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('sg3pipe.synth')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
