"""DCI (Eastwood & Williams 2018): how disentangled, complete and informative a latent code is about known factors.

For each factor ``k`` a regressor predicts it from all code dimensions; its feature importances form column
``k`` of the importance matrix ``R [D, K]``. Then

* disentanglement: each code dimension ``d`` should matter for one factor only,
  ``D_d = 1 - H_K(R[d, :] / sum_k R[d, k])``, averaged with weights ``rho_d = sum_k R[d, k] / sum R``;
* completeness: each factor should be captured by one code dimension,
  ``C_k = 1 - H_D(R[:, k] / sum_d R[d, k])``, averaged over factors;
* informativeness: how well the codes predict the factors, here the mean test ``R^2`` over factors (on
  standardised factors ``R^2 = 1 - MSE``, i.e. one minus the normalised error; 1 is perfect, higher is better,
  unlike the paper's error, where lower is better).

``H_b`` is the entropy in base ``b``, so each score lies in ``[0, 1]``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LassoCV

REGRESSORS = ("gbt", "forest", "lasso")
MAX_SPLIT_FEATURES = 64  # trees consider at most this many random code dims per split (all when D is smaller)
N_ESTIMATORS = 100  # trees per factor (scikit-learn's default)


def _regressor(kind: str, n_dims: int, seed: int):
    max_features = min(n_dims, MAX_SPLIT_FEATURES)
    if kind == "gbt":
        return GradientBoostingRegressor(
            n_estimators=N_ESTIMATORS, max_depth=3, max_features=max_features, random_state=seed
        )
    if kind == "forest":
        return RandomForestRegressor(
            n_estimators=N_ESTIMATORS, max_features=max_features, min_samples_leaf=5, random_state=seed
        )
    return LassoCV(alphas=20, cv=3)


def _importances(model) -> np.ndarray:
    return np.abs(model.coef_) if isinstance(model, LassoCV) else model.feature_importances_


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale columns to zero mean and unit std on the training rows; constant columns become zero."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _one_minus_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """``1 - H_b(p)`` along ``axis`` for distributions ``p`` over ``b = p.shape[axis]`` outcomes."""
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return 1.0 + plogp.sum(axis=axis) / np.log(p.shape[axis])


def disentanglement(importance: np.ndarray) -> tuple[float, np.ndarray]:
    """Disentanglement of an importance matrix ``R [D, K]`` (non-negative).

    Returns:
        ``(score, per_code)``: the ``rho``-weighted mean of ``per_code`` ``[D]``, ``D_d = 1 - H_K(P_d.)``.
        Code dims with no importance get ``D_d = 0`` and weight 0 (a matrix of zeros scores 0).
    """
    row_sums = importance.sum(axis=1)
    p = importance / np.where(row_sums > 0, row_sums, 1.0)[:, None]
    per_code = np.where(row_sums > 0, _one_minus_entropy(p, axis=1), 0.0)
    rho = row_sums / max(importance.sum(), np.finfo(float).tiny)
    return float(per_code @ rho), per_code


def completeness(importance: np.ndarray) -> tuple[float, np.ndarray]:
    """Completeness of an importance matrix ``R [D, K]`` (non-negative).

    Returns:
        ``(score, per_factor)``: the mean of ``per_factor`` ``[K]``, ``C_k = 1 - H_D(P_.k)``; a factor no code
        dim predicts gets ``C_k = 0``. (disentanglement_lib weights ``C_k`` by the factor's share of ``R``;
        with tree regressors every column sums to 1, so the two agree.)
    """
    col_sums = importance.sum(axis=0)
    p = importance / np.where(col_sums > 0, col_sums, 1.0)[None]
    per_factor = np.where(col_sums > 0, _one_minus_entropy(p, axis=0), 0.0)
    return float(per_factor.mean()), per_factor


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    train_fraction: float = 0.8,
    seed: int = 0,
    regressor: str = "gbt",
    jobs: int = 1,
) -> dict:
    """DCI scores of ``codes`` with respect to known ``factors``.

    Codes and factors are standardised with the training rows' mean and std. One regressor per factor:

    * ``"gbt"``: ``GradientBoostingRegressor`` (100 trees of depth 3), importances ``feature_importances_``;
    * ``"forest"``: ``RandomForestRegressor`` (100 trees, leaves of at least 5 samples), same importances;
    * ``"lasso"``: ``LassoCV`` (20 alphas, 3 folds), importances ``|coef_|``. Linear, so it suits codes that
      are linear in the factors, and it is the fastest for wide codes.

    Trees draw at most 64 random code dims per split (``MAX_SPLIT_FEATURES``; all dims when ``D <= 64``): with
    all 2,000 dims of a StyleSpace one boosted fit of ``N = 5,000`` takes minutes; with 64 it takes about 25 s
    (``"gbt"`` and ``"forest"``; ``"lasso"`` about 7 s) on one core of a busy 2-core machine.

    Args:
        codes: ``[N, D]`` latent codes (W, StyleSpace, ...), ``D >= 2``.
        factors: ``[N, K]`` ground-truth factors, ``K >= 2``, none constant.
        train_fraction: fraction of the ``N`` rows (shuffled with ``seed``) used to fit; the rest test.
        seed: seed of the shuffle and of the regressors' randomness.
        regressor: ``"gbt"``, ``"forest"`` or ``"lasso"``.
        jobs: factors fitted at once, in threads (scikit-learn's fits leave Python's lock); the result does not
            depend on it.

    Returns:
        ``{"disentanglement": float, "completeness": float, "informativeness": float (mean test R^2),
        "importance": R [D, K], "disentanglement_per_code": [D], "completeness_per_factor": [K],
        "informativeness_per_factor": [K] (test R^2)}``; scores as float, arrays float64.
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0]:
        raise ValueError(f"expected codes [N, D] and factors [N, K], got {list(codes.shape)}, {list(factors.shape)}")
    n_samples, n_dims = codes.shape
    if n_dims < 2 or factors.shape[1] < 2:
        raise ValueError(f"DCI needs at least 2 code dims and 2 factors, got D = {n_dims}, K = {factors.shape[1]}")
    if regressor not in REGRESSORS:
        raise ValueError(f"regressor must be one of {REGRESSORS}, got {regressor!r}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n_train = int(n_samples * train_fraction)
    if n_train < 10 or n_samples - n_train < 10:
        raise ValueError(f"{n_samples} samples at train_fraction {train_fraction} leave fewer than 10 to fit or test")
    constant = np.flatnonzero(factors.std(axis=0) == 0)
    if len(constant):
        raise ValueError(f"factors {constant.tolist()} are constant; DCI cannot score them")

    order = np.random.default_rng(seed).permutation(n_samples)
    train, test = order[:n_train], order[n_train:]
    x_train, x_test = _standardise(codes[train], codes[test])
    y_train, y_test = _standardise(factors[train], factors[test])

    def fit(k: int) -> tuple[np.ndarray, float]:
        model = _regressor(regressor, n_dims, seed).fit(x_train, y_train[:, k])
        return _importances(model), model.score(x_test, y_test[:, k])

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        fits = list(pool.map(fit, range(factors.shape[1])))
    importance = np.stack([column for column, _ in fits], axis=1).astype(np.float64)
    r2 = np.array([score for _, score in fits], dtype=np.float64)
    d_score, d_per_code = disentanglement(importance)
    c_score, c_per_factor = completeness(importance)
    return {
        "disentanglement": d_score,
        "completeness": c_score,
        "informativeness": float(r2.mean()),
        "importance": importance,
        "disentanglement_per_code": d_per_code,
        "completeness_per_factor": c_per_factor,
        "informativeness_per_factor": r2,
    }
