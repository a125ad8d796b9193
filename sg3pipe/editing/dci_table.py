"""The paper's disentanglement table (section 2.2): DCI of W, W+ and StyleSpace against known factors.

The codes of the direction-finding samples: ``w`` (one W row), ``s`` (StyleSpace) and, when an encoder is
given, W+ as the encoder inverts the samples' renders (the codes videos are edited in; a mapped sample's
W+ would be 16 copies of its W). The factors are the scorer's attribute scores and any factors known for the
same samples (the caller's: e.g. a synthetic world's true parameters behind each attribute).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sg3pipe.editing.dci import dci
from sg3pipe.editing.direction_finding import SCORE_PREFIX, attributes_of
from sg3pipe.editing.sampling import SamplingSettings, render_for_scoring
from sg3pipe.networks.stylegan3 import Generator


@torch.no_grad()
def encoder_codes(G: Generator, encoder, w: np.ndarray, settings: SamplingSettings, n_iters: int = 3) -> np.ndarray:
    """W+ codes ``[N, num_ws * w_dim]`` of the renders of W rows ``w [N, w_dim]`` as ``encoder`` inverts them
    (a progress bar over the samples goes to stderr at most every 5 s)."""
    device = G.mapping.w_avg.device
    out = []
    for start in tqdm(range(0, len(w), settings.batch), desc="encoder codes", unit="batch", mininterval=5):
        ws = torch.from_numpy(w[start : start + settings.batch]).to(device)[:, None].expand(-1, G.num_ws, -1)
        images = render_for_scoring(G, ws, settings.pseudo_align)
        latents, _ = encoder.invert(images, n_iters=n_iters)
        out.append(latents.flatten(1).cpu().numpy())
    return np.concatenate(out)


def dci_table(
    codes: dict[str, np.ndarray], factors: dict[str, np.ndarray], regressor: str, seed: int = 0, jobs: int = 1
) -> pd.DataFrame:
    """DCI of each code space against each set of factors.

    Args:
        codes: space name -> ``[N, D]`` codes.
        factors: factor set name -> ``[N, K]`` factors (``K >= 2``).
        regressor, jobs: see :func:`sg3pipe.editing.dci.dci`.

    Returns:
        One row per (space, factor set): ``space``, ``factors``, ``dims``, ``disentanglement``,
        ``completeness``, ``informativeness``.
    """
    rows = []
    pairs = [(factor_name, space) for factor_name in factors for space in codes]
    for factor_name, space in tqdm(pairs, desc="DCI", unit="fit", mininterval=0):
        values, code = factors[factor_name], codes[space]
        result = dci(code, values, seed=seed, regressor=regressor, jobs=jobs)
        rows.append(
            {
                "space": space,
                "factors": factor_name,
                "dims": code.shape[1],
                "disentanglement": result["disentanglement"],
                "completeness": result["completeness"],
                "informativeness": result["informativeness"],
            }
        )
    return pd.DataFrame(rows)


def dci_factors(samples: pd.DataFrame, known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The factor sets of the table: ``scores`` (the scorer's attribute scores, logit-transformed so the
    regressors see more than saturated probabilities) and each of ``known`` (name -> ``[N, K]`` factors known for
    the same samples, e.g. a synthetic world's true parameters behind each attribute)."""
    names = [SCORE_PREFIX + attribute for attribute in attributes_of(samples)]
    scores = np.clip(samples[names].to_numpy(np.float64), 1e-6, 1 - 1e-6)
    return {"scores": np.log(scores / (1 - scores)), **(known or {})}
