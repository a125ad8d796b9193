"""Train the synthetic world's StyleGAN3 generator by supervised distillation from the renderer.

Each step draws ``z ~ N(0, I)``, turns it into face parameters with the fixed map
``params_from_normal(normalize_2nd_moment(z)[:, :NUM_LATENT])`` (the same normalisation the mapping
network applies, so ``z -> face`` is a function of what the generator sees), draws a random similarity
``M`` per sample (rotation and translation, the distribution of the quality bar), and regresses
``G.synthesis(G.mapping(z), transform=inverse(M))`` onto ``render(params, resolution, M)`` with an MSE
loss. No adversarial loop: the renderer is the ground truth. Seeded, resumable from its checkpoint, and
writes a loss curve and a sample grid.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sg3pipe.io.atomic import atomic_path
from sg3pipe.networks.loading import load_generator
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import tile, to_uint8
from sg3pipe.synth.classifier import SynthAttributeNet, gaussian_blur, load_classifier
from sg3pipe.synth.params import face_params
from sg3pipe.synth.renderer import RenderOutput, attribute_labels, render
from sg3pipe.training import cosine_lr, resume, save_checkpoint
from sg3pipe.transforms import make_transform

log = logging.getLogger(__name__)


@dataclass
class GeneratorTrainingConfig:
    """Architecture and optimisation of the synthetic generator: the defaults are the shipped model's
    architecture and the first stage of its recipe (:mod:`sg3pipe.synth.generator_recipe`)."""

    resolution: int = 64  # output size in pixels
    z_dim: int = 64  # latent size; the first NUM_LATENT normalised entries choose the face
    w_dim: int = 128
    channel_base: int = 1024
    channel_max: int = 128
    mapping_lr_multiplier: float = 1.0  # the official 0.01 freezes the mapping: z -> face is then out of reach
    architecture: str = "R"  # "T" (3x3 convs) or "R" (1x1 convs, radial filters)
    # Other SynthesisNetwork arguments. A wider Fourier input band than the official (cutoff 2, stopband 2**2.1)
    # lets the R config learn eyes and mouths much sooner when fitting fixed faces (docs/findings.md).
    synthesis_kwargs: dict = field(default_factory=lambda: {"first_cutoff": 8, "first_stopband": 17.1})
    steps: int = 8000
    batch: int = 4
    lr: float = 1e-2  # Adam, cosine-decayed to lr / 20 (2e-3 learnt several times slower)
    betas: tuple[float, float] = (0.9, 0.99)
    max_angle_deg: float = 20.0  # training transforms: rotation in +-max_angle_deg
    max_shift: float = 0.15  # and translation in +-max_shift image widths, per axis
    identity_fraction: float = 0.25  # share of samples rendered at the identity (aligned) pose
    curriculum: float = 0.0  # transforms grow from none to the full ranges over this share of the steps
    ema_halflife_steps: float = 200.0  # G_ema, the shipped network, averages the weights with this half-life
    seed: int = 0
    checkpoint_every: int = 50  # steps between checkpoints
    init_from: str | None = None  # a generator file training starts from, widened when narrower (widen_from)
    # Synthetic classifier files (sg3pipe.synth.classifier), the teachers of the two terms below; each term is the
    # mean over them, so that a pattern that fools one classifier and is no feature earns less than a drawn one.
    classifiers: tuple[str, ...] = ()
    feature_lambda: float = 0.0  # weight of the classifier-feature distance between G's image and the render
    attribute_lambda: float = 0.0  # weight of the classifiers' cross-entropy on G's image against the labels
    # The attribute term's classifier sees G's image under a random similarity of up to 15 * attribute_augment
    # degrees and 0.08 * attribute_augment image widths, so that pixel patterns that fool one classifier at one
    # pose (and are no feature) earn less than a drawn feature.
    attribute_augment: float = 0.0
    # and blurred by a Gaussian of sigma uniform in [0, attribute_soften_px] pixels per sample: a feature drawn
    # in a few sharp pixels that a classifier trained on sharp renders alone reads (and a softer reader does
    # not) earns less than one drawn at the scale of the face's parts.
    attribute_soften_px: float = 0.0
    # Teachers per step: 0 uses every one in ``classifiers`` at each step; k uses k of them, rotated in turn
    # (step s uses teachers s * k, ..., s * k + k - 1, modulo their number), so that no one reader's
    # preferences are followed for long, at a k-th of the cost of the term.
    teachers_per_step: int = 0
    landmark_weight: float = 0.0  # extra L2 weight on Gaussian blobs around landmarks 17-67 (brows to mouth)
    mouth_weight: float = 0.0  # and on blobs around landmarks 48-67 (the mouth, where a smile is 1-2 px at 64 px)
    landmark_sigma_px: float = 2.0  # standard deviation of those blobs, in output pixels
    highpass_lambda: float = 0.0  # weight of the L2 between the images' high-pass parts (image - 5x5 binomial blur)
    extra: dict = field(default_factory=dict)  # free-form notes stored with the model

    def generator_kwargs(self) -> dict:
        """Constructor arguments of :class:`Generator` for this config."""
        arch = {"T": {}, "R": {"conv_kernel": 1, "use_radial_filters": True}}[self.architecture]
        return dict(
            z_dim=self.z_dim,
            c_dim=0,
            w_dim=self.w_dim,
            img_resolution=self.resolution,
            img_channels=3,
            mapping_kwargs={"num_layers": 2, "lr_multiplier": self.mapping_lr_multiplier},
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            **arch,
            **self.synthesis_kwargs,
        )


def random_transforms(
    n: int, generator: torch.Generator, max_angle_deg: float, max_shift: float, identity_fraction: float = 0.0
) -> np.ndarray:
    """``[n, 3, 3]`` content-moving similarities: uniform angle and shift, a share of them the identity."""
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64).numpy()
    keep = (u[:, 3] >= identity_fraction).astype(np.float64)
    angle = (2 * u[:, 0] - 1) * max_angle_deg * keep
    tx = (2 * u[:, 1] - 1) * max_shift * keep
    ty = (2 * u[:, 2] - 1) * max_shift * keep
    return make_transform(angle, tx, ty)


def distillation_batch(z: torch.Tensor, content: np.ndarray, resolution: int) -> torch.Tensor:
    """Renderer targets ``[N, 3, R, R]`` in [-1, 1] for latents ``z`` moved by ``content [N, 3, 3]``."""
    return render(face_params(z), resolution, content).images


def generator_psnr(
    G: Generator, n: int, seed: int, max_angle_deg: float = 20.0, max_shift: float = 0.15, batch: int = 32
) -> float:
    """Mean PSNR (dB, images in [-1, 1]) of ``G`` against the renderer on ``n`` held-out latents and transforms."""
    rng = torch.Generator().manual_seed(seed)
    values = []
    with torch.no_grad():
        for start in range(0, n, batch):
            m = min(batch, n - start)
            z = torch.randn(m, G.z_dim, generator=rng)
            content = random_transforms(m, rng, max_angle_deg, max_shift)
            target = distillation_batch(z, content, G.img_resolution)
            images = G.synthesis(G.mapping(z), transform=torch.as_tensor(np.linalg.inv(content)))
            mse = (images.clamp(-1, 1) - target).square().mean(dim=[1, 2, 3]).double()
            values.append(10 * torch.log10(4 / mse))
    return float(torch.cat(values).mean())


def translation_equivariance_psnr(G: Generator, n: int, seed: int, max_pixels: int = 4, batch: int = 32) -> float:
    """Mean PSNR (dB) between ``G`` shifted by a random integer pixel offset through its transform and
    its unshifted image moved by the same offset, away from the borders (StyleGAN3's EQ-T, integer shifts)."""
    rng = torch.Generator().manual_seed(seed)
    res = G.img_resolution
    border = max_pixels
    values = []
    with torch.no_grad():
        for start in range(0, n, batch):
            m = min(batch, n - start)
            ws = G.mapping(torch.randn(m, G.z_dim, generator=rng))
            # Non-zero offsets on both axes: a zero shift would compare an image with itself.
            signs = torch.randint(0, 2, (m, 2), generator=rng) * 2 - 1
            shifts = torch.randint(1, max_pixels + 1, (m, 2), generator=rng) * signs
            base = G.synthesis(ws)
            moved = G.synthesis(
                ws,
                transform=torch.as_tensor(
                    np.linalg.inv(make_transform(0.0, shifts[:, 0].numpy() / res, shifts[:, 1].numpy() / res))
                ),
            )
            for i in range(m):
                dx, dy = int(shifts[i, 0]), int(shifts[i, 1])
                expected = torch.roll(base[i], (dy, dx), dims=(1, 2))[:, border:-border, border:-border]
                got = moved[i][:, border:-border, border:-border]
                values.append(10 * math.log10(4 / (got - expected).double().square().mean().item()))
    return float(np.mean(values))


def attribute_accuracy(
    G: Generator, classifier: SynthAttributeNet, n: int = 1024, seed: int = 4096, batch: int = 64
) -> dict[str, float]:
    """Balanced accuracy (mean of the true-positive and true-negative rates) per attribute of ``classifier``
    reading ``G.synthesis(G.mapping(z, truncation_psi=1))`` against the labels of ``face_params(z)``, on ``n``
    fresh seeds: whether the generator draws what the renderer would."""
    return attribute_accuracies(G, {"classifier": classifier}, n, seed, batch)["classifier"]


def attribute_accuracies(
    G: Generator, classifiers: dict[str, torch.nn.Module], n: int = 1024, seed: int = 4096, batch: int = 64
) -> dict[str, dict[str, float]]:
    """:func:`attribute_accuracy` of several classifiers (name -> a module with ``names`` giving logits) on the
    same images, rendered once: name -> attribute -> balanced accuracy."""
    rng = torch.Generator().manual_seed(seed)
    device = G.mapping.w_avg.device
    decisions = {name: [] for name in classifiers}
    labels = []
    with torch.no_grad():
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), G.z_dim, generator=rng)
            images = G.synthesis(G.mapping(z.to(device), truncation_psi=1))
            for name, classifier in classifiers.items():
                decisions[name].append(classifier(images).cpu() > 0)
            labels.append(attribute_labels(face_params(z)))
    truths = {attribute: torch.cat([chunk[attribute] for chunk in labels]) for attribute in labels[0]}
    accuracy = {}
    for name, classifier in classifiers.items():
        decided = torch.cat(decisions[name])
        truth = torch.stack([truths[attribute] for attribute in classifier.names], dim=1)
        accuracy[name] = {}
        for k, attribute in enumerate(classifier.names):
            tpr = (decided[:, k] & truth[:, k]).sum() / truth[:, k].sum().clamp_min(1)
            tnr = (~decided[:, k] & ~truth[:, k]).sum() / (~truth[:, k]).sum().clamp_min(1)
            accuracy[name][attribute] = float((tpr + tnr) / 2)
    return accuracy


def generator_quality(
    G: Generator, n: int = 256, seed: int = 2024, classifier: SynthAttributeNet | None = None
) -> dict:
    """The quality bars of the shipped generator, on ``n`` held-out latents (seeds unlike training's).

    Returns:
        ``{"psnr_db": mean PSNR against the renderer under random transforms (angle +-20 deg, shift +-0.15),
        "translation_eq_db": integer-pixel translation equivariance PSNR, "attribute_rates": share of
        faces with each binary attribute, "n": n}``, and with a ``classifier`` also
        ``"attribute_balanced_accuracy"`` (:func:`attribute_accuracy` on 1,024 fresh seeds).
    """
    rng = torch.Generator().manual_seed(seed)
    labels = attribute_labels(face_params(torch.randn(n, G.z_dim, generator=rng)))
    quality = {
        "psnr_db": generator_psnr(G, n, seed),
        "translation_eq_db": translation_equivariance_psnr(G, n, seed + 1),
        "attribute_rates": {name: float(value.float().mean()) for name, value in labels.items()},
        "n": n,
    }
    if classifier is not None:
        quality["attribute_balanced_accuracy"] = attribute_accuracy(G, classifier)
    return quality


def landmark_weights(landmarks: torch.Tensor, resolution: int, sigma_px: float, first: int = 17) -> torch.Tensor:
    """``[N, 1, R, R]`` in [0, 1]: the largest Gaussian (sigma in pixels) over landmarks ``first``-67 of
    ``landmarks [N, 68, 2]`` (pixel coordinates): from 17, brows, nose, eyes and mouth, where glasses sit too;
    from 48, the mouth alone."""
    points = landmarks[:, first:].float()
    axis = torch.arange(resolution, dtype=torch.float32, device=landmarks.device)
    dx = (axis[None, None, :] - points[..., 0:1]).square()  # [N, 51, R]
    dy = (axis[None, None, :] - points[..., 1:2]).square()
    d2 = dy[..., :, None] + dx[..., None, :]  # [N, 51, R, R]
    return torch.exp(-d2.amin(dim=1, keepdim=True) / (2 * sigma_px**2))


def high_pass(images: torch.Tensor) -> torch.Tensor:
    """``images [N, C, H, W]`` minus their 5x5 binomial blur (reflect-padded): the detail above about a quarter
    of the sampling rate, same shape."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=images.device, dtype=images.dtype) / 16
    kernel = (taps[:, None] * taps[None, :]).expand(images.shape[1], 1, 5, 5)
    blurred = F.conv2d(F.pad(images, (2, 2, 2, 2), mode="reflect"), kernel, groups=images.shape[1])
    return images - blurred


def augment(images: torch.Tensor, content: np.ndarray) -> torch.Tensor:
    """``images [N, 3, R, R]`` with their content moved by the similarities ``content [N, 3, 3]``
    (sg3pipe.transforms), bilinearly, the outside filled by the border pixels; differentiable."""
    sampling = torch.as_tensor(np.linalg.inv(content), dtype=images.dtype, device=images.device)
    theta = torch.cat([sampling[:, :2, :2], 2 * sampling[:, :2, 2:]], dim=2)  # unit widths -> [-1, 1] coordinates
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def distillation_loss(
    images: torch.Tensor,
    target: RenderOutput,
    cfg: GeneratorTrainingConfig,
    classifiers: list[SynthAttributeNet],
    rng: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The terms of the training loss for generated ``images [N, 3, R, R]`` against the renderer's ``target``.

    ``l2``: the mean squared error, weighted ``1 + landmark_weight`` on the landmark blobs and ``mouth_weight``
    more on the mouth's (normalised so a uniform error gives the plain MSE); with classifiers, each of these
    two is the mean over them: ``features``: the squared distance of a classifier's stage features, each stage
    divided by the target's mean square; ``attribute``: the binary cross-entropy of a classifier's logits on
    ``images`` (moved by :func:`augment` under random similarities drawn from ``rng`` when
    ``cfg.attribute_augment`` > 0, and blurred when ``cfg.attribute_soften_px`` > 0) against the target's
    labels; ``highpass``: the mean squared difference of the
    images' high-pass parts (:func:`high_pass`), which gives fine detail (eyes, lips, glasses frames: a few
    percent of the pixels) the weight a plain L2 does not.
    """
    squared = (images - target.images).square().mean(dim=1, keepdim=True)
    if cfg.landmark_weight > 0 or cfg.mouth_weight > 0:
        landmarks, sigma = target.landmarks.to(images.device), cfg.landmark_sigma_px
        weights = 1 + cfg.landmark_weight * landmark_weights(landmarks, cfg.resolution, sigma)
        if cfg.mouth_weight > 0:
            weights = weights + cfg.mouth_weight * landmark_weights(landmarks, cfg.resolution, sigma, first=48)
        terms = {"l2": (squared * weights).sum() / weights.sum()}
    else:
        terms = {"l2": squared.mean()}
    if cfg.highpass_lambda > 0:
        terms["highpass"] = cfg.highpass_lambda * (high_pass(images) - high_pass(target.images)).square().mean()
    if classifiers and cfg.feature_lambda > 0:
        terms["features"] = (
            cfg.feature_lambda
            * torch.stack([feature_distance(classifier, images, target.images) for classifier in classifiers]).mean()
        )
    if classifiers and cfg.attribute_lambda > 0:
        seen = images
        if cfg.attribute_augment > 0:
            moves = random_transforms(len(images), rng, 15 * cfg.attribute_augment, 0.08 * cfg.attribute_augment)
            seen = augment(images, moves)
        if cfg.attribute_soften_px > 0:
            seen = gaussian_blur(seen, torch.rand(len(images), generator=rng) * cfg.attribute_soften_px)
        cross_entropies = []
        for classifier in classifiers:
            labels = torch.stack([target.labels[name] for name in classifier.names], dim=1).float()
            cross_entropies.append(F.binary_cross_entropy_with_logits(classifier(seen), labels.to(images.device)))
        terms["attribute"] = cfg.attribute_lambda * torch.stack(cross_entropies).mean()
    return terms


def teachers_of_step(teachers: list, step: int, per_step: int) -> list:
    """The teachers training step ``step`` uses: all of them when ``per_step`` is 0 (or not fewer than them),
    else ``per_step`` of them in turn: ``teachers[(step * per_step + i) % len(teachers)]`` for ``i < per_step``."""
    if per_step <= 0 or per_step >= len(teachers):
        return teachers
    return [teachers[(step * per_step + i) % len(teachers)] for i in range(per_step)]


def feature_distance(classifier: SynthAttributeNet, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scalar: the mean over ``classifier``'s stages of the squared distance between the stage features of
    ``images`` and of ``target`` (both ``[N, 3, R, R]``), each stage divided by the target's mean square."""
    with torch.no_grad():
        wanted = classifier.features(target)
    got = classifier.features(images)
    distances = [(g - w).square().mean() / w.square().mean().clamp_min(1e-8) for g, w in zip(got, wanted, strict=True)]
    return sum(distances) / len(distances)


def widen_from(G: Generator, narrow: Generator) -> None:
    """Load the weights of ``narrow``, a generator of the same architecture with as many or fewer channels per
    layer (a smaller ``channel_base``), into ``G`` so that ``G`` draws the same images (Net2Net-style growth).

    Each layer's old channels keep their weights; the new output channels keep ``G``'s fresh random weights
    (demodulation gives them unit scale), and the weights from new input channels to old output channels are
    zero, so the new channels do not change the image until training uses them; their weights get gradients
    from the first step. The Fourier input's channel mix and ToRGB divide by ``sqrt(channels)``, so the mix's
    old block and ToRGB's old affine rows are scaled by ``sqrt(new / old)`` to keep the image.

    Raises:
        ValueError: the generators differ in anything but channel counts, or ``narrow`` is wider somewhere.
    """
    names = dict(zip(G.synthesis.layer_names, narrow.synthesis.layer_names, strict=True))  # names carry widths

    def narrow_name(name: str) -> str:
        parts = name.split(".")
        if parts[0] == "synthesis" and parts[1] in names:
            parts[1] = names[parts[1]]
        return ".".join(parts)

    small = narrow.state_dict()
    big = G.state_dict()
    if {narrow_name(name) for name in big} != set(small):
        raise ValueError("widen_from: the generators have different layers; only channel counts may differ")
    grown = {}
    for name, target in big.items():
        source = small[narrow_name(name)].to(target.device)
        if source.ndim != target.ndim or any(a > b for a, b in zip(source.shape, target.shape, strict=True)):
            raise ValueError(f"widen_from: {name} is {list(source.shape)} in the narrow generator, "
                             f"{list(target.shape)} in the wide one")  # fmt: skip
        value = target.clone()
        value[tuple(slice(0, n) for n in source.shape)] = source
        if name == "synthesis.input.weight" or (name.endswith(".weight") and value.ndim == 4):
            value[: source.shape[0], source.shape[1] :] = 0  # input mix [out, in], modulated conv [out, in, k, k]
        if name == "synthesis.input.weight":
            value[: source.shape[0], : source.shape[1]] *= float(np.sqrt(target.shape[1] / source.shape[1]))
        grown[name] = value
    for layer_name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, layer_name)
        old = getattr(narrow.synthesis, names[layer_name]).in_channels
        if layer.is_torgb and layer.in_channels != old:
            gain = float(np.sqrt(layer.in_channels / old))
            for part in ("weight", "bias"):
                grown[f"synthesis.{layer_name}.affine.{part}"][:old] *= gain
    G.load_state_dict(grown)


def update_ema(G_ema: Generator, G: Generator, beta: float) -> None:
    """``G_ema <- beta * G_ema + (1 - beta) * G`` for parameters; buffers (e.g. ``w_avg``) are copied."""
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)


def train_generator(
    out_dir: str | os.PathLike,
    cfg: GeneratorTrainingConfig,
    device: str = "cpu",
    time_limit_s: float | None = None,
    stop_at: int | None = None,
) -> Generator:
    """Train (or resume training) the synthetic generator; returns its weight average ``G_ema`` in eval mode
    (as in StyleGAN3, the averaged network is the one shipped).

    Writes ``out_dir/checkpoint.pt`` every ``cfg.checkpoint_every`` steps (atomically; resumed from when
    present and made with the same config), ``out_dir/losses.json`` and, at the end, ``out_dir/loss.png``
    and ``out_dir/samples.png``. ``time_limit_s`` stops early (after a checkpoint) so a long run can be
    split over several invocations; ``stop_at`` ends the run at that step of the ``cfg.steps``-step learning
    rate schedule (a stage of :mod:`sg3pipe.synth.generator_recipe` cut short).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    G = Generator(**cfg.generator_kwargs()).to(device).train()
    if cfg.init_from is not None:
        widen_from(G, load_generator(cfg.init_from, device))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    classifiers = [load_classifier(path, device).requires_grad_(False) for path in cfg.classifiers]
    ema_beta = 0.5 ** (1 / cfg.ema_halflife_steps) if cfg.ema_halflife_steps > 0 else 0.0
    optimizer = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    parts = {"generator": G, "generator_ema": G_ema, "optimizer": optimizer}
    step, losses = resume(out_dir, parts, rng, asdict(cfg), device)
    started = time.monotonic()
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    while step < end:
        z = torch.randn(cfg.batch, cfg.z_dim, generator=rng)
        strength = min(1.0, step / max(cfg.curriculum * cfg.steps, 1)) if cfg.curriculum > 0 else 1.0
        content = random_transforms(
            cfg.batch, rng, strength * cfg.max_angle_deg, strength * cfg.max_shift, cfg.identity_fraction
        )
        target = render(face_params(z).to(device), cfg.resolution, content)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr)
        ws = G.mapping(z.to(device), update_emas=True)
        images = G.synthesis(ws, transform=torch.as_tensor(np.linalg.inv(content)).to(device), update_emas=True)
        terms = distillation_loss(images, target, cfg, teachers_of_step(classifiers, step, cfg.teachers_per_step), rng)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_ema(G_ema, G, ema_beta)
        step += 1
        losses.append({name: value.item() for name, value in terms.items()})
        if step % 20 == 0:
            recent = {name: np.mean([entry[name] for entry in losses[-20:]]) for name in terms}
            psnr = 10 * math.log10(4 / recent["l2"])
            text = " ".join(f"{k} {v:.5f}" for k, v in recent.items())
            log.info("step %d/%d (%.1f dB) %s", step, cfg.steps, psnr, text)
        out_of_time = time_limit_s is not None and time.monotonic() - started > time_limit_s
        if step % cfg.checkpoint_every == 0 or step == end or out_of_time:
            save_checkpoint(out_dir, parts, rng, step, losses, asdict(cfg))
        if out_of_time:
            break
    write_training_figures(G_ema, losses, out_dir)
    return G_ema


def write_training_figures(G: Generator, losses: list[dict], out_dir: Path) -> None:
    """``loss.png`` (PSNR of the training loss per step) and ``samples.png`` (generator vs renderer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    psnr = 10 * np.log10(4 / np.maximum(np.asarray([entry["l2"] for entry in losses]), 1e-12))
    ax.plot(psnr, lw=0.5, alpha=0.4, label="per step")
    window = min(100, len(psnr))
    if window > 1:
        ax.plot(
            np.arange(window - 1, len(psnr)),
            np.convolve(psnr, np.ones(window) / window, "valid"),
            label=f"mean of {window}",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training PSNR (dB, of the L2 term)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_dir / "loss.png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)

    rng = torch.Generator().manual_seed(12345)
    z = torch.randn(8, G.z_dim, generator=rng)
    content = random_transforms(8, rng, 20.0, 0.15, identity_fraction=0.5)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z), transform=torch.as_tensor(np.linalg.inv(content)))
    real = distillation_batch(z, content, G.img_resolution)
    grid = tile(to_uint8(torch.cat([real, fake])), 8)  # renderer row above generator row
    from PIL import Image

    with atomic_path(out_dir / "samples.png") as tmp:
        Image.fromarray(grid).save(tmp)
