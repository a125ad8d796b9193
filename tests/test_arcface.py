"""The identity loss: ArcFace IR-SE50 with the official names, read from a file, and usable in encoder training."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close_to_scale

from sg3pipe.metrics.arcface import ArcFaceIRSE50, IdentityLoss, load_identity_loss

# The loaded network against the saved one on the same images, as a fraction of each embedding's largest
# element: measured 0 (the same weights through the same operations).
TOL_SAME_NET = 1e-6


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = ArcFaceIRSE50().eval()
    for module in net.modules():  # non-trivial batch statistics, so that eval mode matters
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50.pth"
    torch.save(net.state_dict(), path)
    return path, net


def test_official_names_and_shapes(weights):
    _, net = weights
    state = net.state_dict()
    # Names of pSp's model_ir_se50.pth: stem, 24 IR-SE units, output layer (BN2d, Linear, BN1d).
    assert state["input_layer.0.weight"].shape == (64, 3, 3, 3)
    assert state["body.23.res_layer.5.fc1.weight"].shape == (32, 512, 1, 1)
    assert state["body.3.shortcut_layer.0.weight"].shape == (128, 64, 1, 1)
    assert state["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert "output_layer.4.running_var" in state and len([k for k in state if k.startswith("body.")]) > 0
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(43.8e6, rel=0.01)


def test_loss_is_zero_for_the_same_face_and_grows_with_change(weights):
    path, net = weights
    loss = load_identity_loss(path)
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    same = loss(images, images)
    torch.testing.assert_close(same, torch.zeros(3), atol=1e-5, rtol=0)
    other = loss(images.flip(0), images)
    assert other.shape == (3,) and (other[[0, 2]] > 1e-3).all()
    # The loaded network is the saved one, in eval mode even after .train().
    loss.train()
    assert_close_to_scale(loss.embed(images), IdentityLoss(net).embed(images), TOL_SAME_NET, dim=-1)
    y_hat = images.clone().requires_grad_(True)
    loss(y_hat, images.flip(0)).sum().backward()
    assert y_hat.grad.abs().sum() > 0


def test_missing_or_wrong_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_ir_se50.pth"):
        load_identity_loss(tmp_path / "nowhere.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not an ArcFace IR-SE50 state dict"):
        load_identity_loss(wrong)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="corrupt torch file"):
        load_identity_loss(tmp_path / "junk.pth")


def test_encoder_training_uses_the_identity_loss(tmp_path, weights):
    import json

    from generators import make_generator

    from sg3pipe.encoder_training import EncoderTrainingConfig, train_encoder

    G = make_generator("T", resolution=16, channel_base=256, channel_max=16, w_dim=16, z_dim=16)

    def source(n, rng):
        with torch.no_grad():
            return G.synthesis(G.mapping(torch.randn(n, G.z_dim, generator=rng))), None

    cfg = EncoderTrainingConfig(
        input_size=16, stage_units=(1, 1), stage_widths=(16, 16), steps=1, accumulate=1, n_iters=1, l2_lambda=0
    )
    train_encoder(tmp_path, G, source, cfg, identity=load_identity_loss(weights[0]))
    (entry,) = json.loads((tmp_path / "losses.json").read_text())
    assert entry["id"] > 0 and "l2" not in entry
