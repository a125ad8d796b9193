"""DCI on toy codes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import hadamard
from scipy.stats import special_ortho_group

from sg3pipe.editing.dci import completeness, dci, disentanglement

N, K = 2000, 4


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, K))


def test_entropy_scores_of_known_importance_matrices():
    assert disentanglement(np.eye(3))[0] == pytest.approx(1)
    assert completeness(np.eye(3))[0] == pytest.approx(1)
    assert disentanglement(np.ones((3, 3)))[0] == pytest.approx(0)
    assert completeness(np.ones((3, 3)))[0] == pytest.approx(0)
    # Factor 0 spread evenly over two of three code dims: C_0 = 1 - log 2 / log 3.
    score, per_factor = completeness(np.array([[1.0, 0], [1, 0], [0, 1]]))
    np.testing.assert_allclose(per_factor, [1 - np.log(2) / np.log(3), 1])
    assert score == pytest.approx(per_factor.mean())
    # Code dim 1 matters 3x as much as dim 0 and is split between both factors: D = 0.25 * 1 + 0.75 * 0.
    score, per_code = disentanglement(np.array([[1.0, 0], [1.5, 1.5]]))
    np.testing.assert_allclose(per_code, [1, 0])
    assert score == pytest.approx(0.25)
    assert disentanglement(np.zeros((3, 2)))[0] == 0


@pytest.mark.parametrize("regressor", ["gbt", "forest", "lasso"])
def test_permuted_scaled_factors_are_disentangled_complete_and_informative(factors, regressor):
    codes = factors[:, [2, 0, 3, 1]] * np.array([3.0, 0.5, -2.0, 10.0])
    result = dci(codes, factors, regressor=regressor)
    assert result["disentanglement"] > 0.9
    assert result["completeness"] > 0.9
    assert result["informativeness"] > 0.9
    assert result["importance"].shape == (K, K)
    assert result["importance"].argmax(axis=0).tolist() == [1, 3, 0, 2]  # the code dim of each factor


@pytest.mark.parametrize("regressor", ["gbt", "forest", "lasso"])
def test_the_densest_rotation_is_fully_entangled(factors, regressor):
    # Every code dim is +-1/2 of every factor: the importances are uniform, so D = C = 0.
    result = dci(factors @ (hadamard(K) / 2), factors, regressor=regressor)
    assert result["disentanglement"] < 0.1
    assert result["completeness"] < 0.1
    assert result["informativeness"] > 0.9


@pytest.mark.parametrize("regressor, bound", [("lasso", 0.5), ("gbt", 0.75)])
def test_a_random_rotation_is_entangled(factors, regressor, bound):
    # Trees lean on the dims with the largest coefficients, so they score random rotations higher than lasso.
    rotated = dci(factors @ special_ortho_group.rvs(K, random_state=1), factors, regressor=regressor)
    assert rotated["disentanglement"] < bound
    assert rotated["completeness"] < bound


def test_a_factor_duplicated_into_two_dims_is_less_complete(factors):
    codes = np.concatenate([factors, factors[:, :1]], axis=1)
    result = dci(codes, factors)
    assert result["completeness_per_factor"][0] < 0.8
    assert result["completeness_per_factor"][1:].min() > 0.9
    assert result["completeness"] < dci(factors, factors)["completeness"]
    assert result["disentanglement"] > 0.9  # both copies still serve one factor each


def test_wide_codes_find_the_informative_dims():
    rng = np.random.default_rng(4)
    factors = rng.standard_normal((1000, 3))
    codes = rng.standard_normal((1000, 300))
    codes[:, [10, 150, 299]] = factors + 0.1 * rng.standard_normal((1000, 3))
    result = dci(codes, factors)
    assert result["importance"].argmax(axis=0).tolist() == [10, 150, 299]
    assert result["informativeness"] > 0.9
    assert result["importance"].shape == (300, 3)


def test_dci_is_deterministic_and_rejects_what_it_cannot_score(factors):
    few = factors[:500]
    first, again = dci(few, few, seed=2), dci(few, few, seed=2, jobs=3)  # factors fitted in threads: same result
    np.testing.assert_array_equal(first["importance"], again["importance"])
    np.testing.assert_array_equal(first["informativeness_per_factor"], again["informativeness_per_factor"])
    with pytest.raises(ValueError, match="at least 2 code dims and 2 factors"):
        dci(factors, factors[:, :1])
    constant = factors.copy()
    constant[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"factors \[2\] are constant"):
        dci(factors, constant)
    with pytest.raises(ValueError, match="regressor"):
        dci(factors, factors, regressor="svm")
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        dci(factors[:10], factors)
