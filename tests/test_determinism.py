"""The same seed gives bitwise-identical features for any batch size, budget and thread count."""

import numpy as np
import torch

from rocketstream.core import fit, transform


def test_batch_size_and_budget_do_not_change_features(basicmotions):
    xtr, _, xte, _ = basicmotions
    p = fit(xtr, random_state=0)
    base = transform(xte, p).cpu().numpy()
    for bs in (1, 3, 17, 40):
        np.testing.assert_array_equal(transform(xte, p, batch_size=bs).cpu().numpy(), base)
    # a tiny budget forces one series and few kernels per step
    np.testing.assert_array_equal(transform(xte, p, memory_budget=20_000).cpu().numpy(), base)


def test_fit_budget_does_not_change_biases(gunpoint):
    xtr = gunpoint[0]
    a = fit(xtr, random_state=5)
    b = fit(xtr, random_state=5, memory_budget=10_000)  # one kernel per step
    np.testing.assert_array_equal(a.biases, b.biases)


def test_thread_count_does_not_change_features(gunpoint):
    xtr, _, xte, _ = gunpoint
    p = fit(xtr, random_state=1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = transform(xte, p).cpu().numpy()
        torch.set_num_threads(2)
        two = transform(xte, p).cpu().numpy()
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_same_seed_same_model_different_seed_differs(gunpoint):
    xtr = gunpoint[0]
    assert fit(xtr, random_state=3).equals(fit(xtr, random_state=3))
    assert not fit(xtr, random_state=3).equals(fit(xtr, random_state=4))


def test_numpy_and_torch_inputs_agree(gunpoint):
    xtr, _, xte, _ = gunpoint
    p = fit(torch.from_numpy(xtr), random_state=2)
    assert p.equals(fit(xtr, random_state=2))
    from_tensor = transform(torch.from_numpy(xte), p).cpu().numpy()
    np.testing.assert_array_equal(from_tensor, transform(xte, p).cpu().numpy())


def test_long_series_counts_are_exact():
    # a ramp: every output inside the valid region is distinct, so counts are easy to check
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 5000)).astype(np.float32)
    p = fit(x, num_features=84 * 3, random_state=0)
    f = transform(x, p).cpu().numpy()
    assert f.shape == (2, 252) and np.all((f >= 0) & (f <= 1))
    # PPV values are count / n with n = L or L - 8d: multiplying back gives integers
    t = p.feature_table()
    n = np.where(t["padded"], 5000, 5000 - 8 * t["dilation"]).astype(np.float64)
    counts = f.astype(np.float64) * n
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3 * n.max() / 5000)
