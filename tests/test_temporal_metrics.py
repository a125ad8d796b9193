"""Jitter, TL-ID and TG-ID (sg3pipe.metrics.temporal)."""

import numpy as np

from sg3pipe.metrics.temporal import identity_consistency, jitter


def test_jitter_of_a_known_walk_and_gaps():
    values = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [6.0, 8.0]])  # steps of length 5, 0, 5
    assert jitter(values, np.ones(4, bool)) == np.sqrt((25 + 0 + 25) / 3)
    # Frame 2 unusable: only the pair (0, 1) is adjacent and usable.
    assert jitter(values, np.array([1, 1, 0, 1], bool)) == 5.0
    assert np.isnan(jitter(values, np.array([1, 0, 1, 0], bool)))


def test_identity_consistency_is_one_for_the_source_and_drops_with_flicker_and_drift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=128)
    source = base + 0.05 * rng.normal(size=(20, 128))
    usable = np.ones(20, bool)
    same = identity_consistency(source, source, usable)
    assert same == {"tl_id": 1.0, "tg_id": 1.0}
    flicker = source.copy()
    flicker[::2] += 0.8 * rng.normal(size=(10, 128))  # every other frame another face
    drift = source + np.linspace(0, 2.0, 20)[:, None] * rng.normal(size=128)  # slowly becomes another face
    f, d = identity_consistency(source, flicker, usable), identity_consistency(source, drift, usable)
    assert f["tl_id"] < 0.9 and f["tg_id"] < 0.9
    assert d["tl_id"] > 0.97 > d["tg_id"]  # drift keeps neighbours alike but not the ends


def test_identity_consistency_leaves_out_unusable_pairs():
    rng = np.random.default_rng(1)
    source = rng.normal(size=128) + 0.05 * rng.normal(size=(6, 128))
    edited = source.copy()
    edited[3] = rng.normal(size=128)  # a different face on the unusable frame must not count
    usable = np.array([1, 1, 1, 0, 1, 1], bool)
    assert identity_consistency(source, edited, usable) == {"tl_id": 1.0, "tg_id": 1.0}
