"""The official ReStyle encoders, written down independently of sg3pipe's modules, for tests.

From reading the stylegan3-editing repo (``inversion/models/encoders``, ``inversion/models/psp3.py``,
``inversion/training/coach_restyle_*.py``):

* :func:`official_shapes`: every state-dict name and shape of the four official encoder classes, in order;
* :func:`official_forward`: what those classes compute, in plain ``torch.nn.functional`` calls on a state dict;
* :func:`write_official_checkpoint`: a checkpoint as the coaches save it (``state_dict`` of the pSp/e4e net,
  ``opts`` = ``dataclasses.asdict(TrainOptions)`` with ``pathlib`` paths, ``latent_avg`` = the decoder's
  ``w_avg``; the e4e coach adds the step, the optimizer state and the best validation loss).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

# encoder_type -> (IR-SE backbone?, progressive?)
TYPES = {
    "BackboneEncoder": (True, False),
    "ResNetBackboneEncoder": (False, False),
    "ProgressiveBackboneEncoder": (True, True),
    "ResNetProgressiveBackboneEncoder": (False, True),
}
IR_SE50_UNITS = [(64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3)]  # helpers.get_blocks(50)
RESNET34_UNITS = [(64, 64, 3), (64, 128, 4), (128, 256, 6), (256, 512, 3)]  # torchvision resnet34 layer1..4


def _bn(prefix: str, channels: int) -> dict[str, list[int]]:
    shapes = {f"{prefix}.{name}": [channels] for name in ("weight", "bias", "running_mean", "running_var")}
    return {**shapes, f"{prefix}.num_batches_tracked": []}


def official_shapes(encoder_type: str, input_nc: int = 6, n_styles: int = 16, w_dim: int = 512) -> dict:
    """``{name: shape}`` of the official encoder's state dict, in the order ``state_dict()`` lists them."""
    ir_se, _ = TYPES[encoder_type]
    shapes = {}
    if ir_se:  # input_layer = Sequential(Conv2d 3x3, BatchNorm2d, PReLU)
        shapes["input_layer.0.weight"] = [64, input_nc, 3, 3]
        shapes.update(_bn("input_layer.1", 64))
        shapes["input_layer.2.weight"] = [64]
    else:  # conv1 7x7 stride 2, bn1, relu = PReLU
        shapes["conv1.weight"] = [64, input_nc, 7, 7]
        shapes.update(_bn("bn1", 64))
        shapes["relu.weight"] = [64]
    idx = 0
    for in_c, depth, count in IR_SE50_UNITS if ir_se else RESNET34_UNITS:
        for unit in range(count):
            c_in = in_c if unit == 0 else depth
            p = f"body.{idx}"
            if ir_se:  # bottleneck_IR_SE: shortcut_layer (MaxPool2d when c_in == depth), res_layer
                if c_in != depth:
                    shapes[f"{p}.shortcut_layer.0.weight"] = [depth, c_in, 1, 1]
                    shapes.update(_bn(f"{p}.shortcut_layer.1", depth))
                shapes.update(_bn(f"{p}.res_layer.0", c_in))
                shapes[f"{p}.res_layer.1.weight"] = [depth, c_in, 3, 3]
                shapes[f"{p}.res_layer.2.weight"] = [depth]
                shapes[f"{p}.res_layer.3.weight"] = [depth, depth, 3, 3]
                shapes.update(_bn(f"{p}.res_layer.4", depth))
                shapes[f"{p}.res_layer.5.fc1.weight"] = [depth // 16, depth, 1, 1]
                shapes[f"{p}.res_layer.5.fc2.weight"] = [depth, depth // 16, 1, 1]
            else:  # torchvision BasicBlock
                shapes[f"{p}.conv1.weight"] = [depth, c_in, 3, 3]
                shapes.update(_bn(f"{p}.bn1", depth))
                shapes[f"{p}.conv2.weight"] = [depth, depth, 3, 3]
                shapes.update(_bn(f"{p}.bn2", depth))
                if c_in != depth:
                    shapes[f"{p}.downsample.0.weight"] = [depth, c_in, 1, 1]
                    shapes.update(_bn(f"{p}.downsample.1", depth))
            idx += 1
    for head in range(n_styles):  # GradualStyleBlock(512, 512, 16): 4 strided convs + EqualLinear
        for conv in range(4):
            shapes[f"styles.{head}.convs.{2 * conv}.weight"] = [w_dim, 512 if conv == 0 else w_dim, 3, 3]
            shapes[f"styles.{head}.convs.{2 * conv}.bias"] = [w_dim]
        shapes[f"styles.{head}.linear.weight"] = [w_dim, w_dim]
        shapes[f"styles.{head}.linear.bias"] = [w_dim]
    return shapes


def _batch_norm(sd: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[f"{prefix}.running_mean"],
        sd[f"{prefix}.running_var"],
        sd[f"{prefix}.weight"],
        sd[f"{prefix}.bias"],
        training=False,
        eps=1e-5,
    )


def _unit_strides(stage_units: list[int], ir_se: bool) -> list[int]:
    # IR-SE: the first unit of every stage has stride 2; ResNet: of every stage but the first.
    return [
        2 if unit == 0 and (ir_se or stage > 0) else 1
        for stage, count in enumerate(stage_units)
        for unit in range(count)
    ]


def official_forward(sd: dict, encoder_type: str, stage_units: list[int], x: torch.Tensor) -> torch.Tensor:
    """The official encoder's forward pass (eval mode) from its state dict: ``[N, 6, S, S]`` -> ``[N, 16, w_dim]``."""
    ir_se, progressive = TYPES[encoder_type]
    if ir_se:
        x = F.prelu(
            _batch_norm(sd, "input_layer.1", F.conv2d(x, sd["input_layer.0.weight"], padding=1)),
            sd["input_layer.2.weight"],
        )
    else:
        x = F.prelu(_batch_norm(sd, "bn1", F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)), sd["relu.weight"])
    for idx, stride in enumerate(_unit_strides(stage_units, ir_se)):
        p = f"body.{idx}"
        if ir_se:
            if f"{p}.shortcut_layer.0.weight" in sd:
                shortcut = _batch_norm(
                    sd, f"{p}.shortcut_layer.1", F.conv2d(x, sd[f"{p}.shortcut_layer.0.weight"], stride=stride)
                )
            else:
                shortcut = F.max_pool2d(x, 1, stride)
            r = _batch_norm(sd, f"{p}.res_layer.0", x)
            r = F.prelu(F.conv2d(r, sd[f"{p}.res_layer.1.weight"], padding=1), sd[f"{p}.res_layer.2.weight"])
            r = _batch_norm(
                sd, f"{p}.res_layer.4", F.conv2d(r, sd[f"{p}.res_layer.3.weight"], stride=stride, padding=1)
            )
            gate = F.adaptive_avg_pool2d(r, 1)
            gate = torch.sigmoid(
                F.conv2d(F.relu(F.conv2d(gate, sd[f"{p}.res_layer.5.fc1.weight"])), sd[f"{p}.res_layer.5.fc2.weight"])
            )
            x = r * gate + shortcut
        else:
            out = F.relu(_batch_norm(sd, f"{p}.bn1", F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1)))
            out = _batch_norm(sd, f"{p}.bn2", F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1))
            if f"{p}.downsample.0.weight" in sd:
                x = _batch_norm(sd, f"{p}.downsample.1", F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride))
            x = F.relu(out + x)
    heads = []
    n_styles = 1 + max(int(key.split(".")[1]) for key in sd if key.startswith("styles."))
    for head in range(n_styles):
        h = x
        conv = 0
        while f"styles.{head}.convs.{conv}.weight" in sd:
            h = F.conv2d(
                h, sd[f"styles.{head}.convs.{conv}.weight"], sd[f"styles.{head}.convs.{conv}.bias"], stride=2, padding=1
            )
            h = F.leaky_relu(h, 0.01)
            conv += 2
        weight = sd[f"styles.{head}.linear.weight"]
        h = h.view(-1, weight.shape[1])
        heads.append(F.linear(h, weight * (1 / math.sqrt(weight.shape[1])), sd[f"styles.{head}.linear.bias"]))
    if not progressive:
        return torch.stack(heads, dim=1)
    w = heads[0].repeat(n_styles, 1, 1).permute(1, 0, 2).clone()
    for i in range(1, n_styles):
        w[:, i] += heads[i]
    return w


def official_opts(encoder_type: str, output_size: int) -> dict:
    """``dataclasses.asdict(TrainOptions(...))`` of a ReStyle training run: plain values and ``pathlib`` paths."""
    return {
        "exp_dir": Path("experiments/restyle_e4e_ffhq"),
        "dataset_type": "ffhq_encode",
        "encoder_type": encoder_type,
        "input_nc": 6,
        "output_size": output_size,
        "n_iters_per_batch": 3,
        "batch_size": 2,
        "learning_rate": 0.0001,
        "optim_name": "ranger",
        "train_decoder": False,
        "start_from_latent_avg": True,
        "lpips_lambda": 0.8,
        "stylegan_weights": Path("pretrained_models/sg3-r-ffhq-1024.pt"),
        "checkpoint_path": None,
        "max_val_batches": None,
        "progressive_steps": [0, 20000, 22000],
        "device": None,
    }


def write_official_checkpoint(
    path: Path,
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    latent_avg: torch.Tensor,
    encoder_type: str,
    opts: object = None,
    batch_transform: int = 0,
) -> Path:
    """Save ``{state_dict: {encoder.*, decoder.*}, opts, latent_avg, ...}`` with ``torch.save`` as the coaches do.

    ``batch_transform``: leave a ``[B, 3, 3]`` ``synthesis.input.transform`` in the decoder's state (the official
    forward assigns the batch's transforms to that buffer).
    """
    state_dict = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    for key, value in decoder.state_dict().items():
        if key == "synthesis.input.transform" and batch_transform:
            value = torch.eye(3).repeat(batch_transform, 1, 1)
        state_dict[f"decoder.{key}"] = value
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam([param])
    param.grad = torch.ones(3)
    optimizer.step()
    ckpt = {
        "state_dict": state_dict,
        "opts": official_opts(encoder_type, decoder.img_resolution) if opts is None else opts,
        "global_step": 120000,
        "optimizer": optimizer.state_dict(),
        "best_val_loss": 0.125,
        "latent_avg": latent_avg,
    }
    torch.save(ckpt, path)
    return path
