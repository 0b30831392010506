"""Bad input gives a clear error that names the problem and the fix."""

import numpy as np
import pytest
import torch

from rocketstream.core import InputError, as_float32_array, check_against_model, fit, transform


@pytest.fixture(scope="module")
def model():
    x = np.random.default_rng(0).standard_normal((20, 2, 50)).astype(np.float32)
    return fit(x, random_state=0)


def test_short_series():
    with pytest.raises(InputError, match="at least 9 time points"):
        fit(np.zeros((5, 1, 8), np.float32))


@pytest.mark.parametrize("shape", [(10,), (10, 50), (2, 3, 4, 50)])
def test_wrong_ndim(shape):
    with pytest.raises(InputError, match="must be 3-D"):
        as_float32_array(np.zeros(shape))


def test_two_d_hint():
    with pytest.raises(InputError, match=r"X\[:, None, :\]"):
        fit(np.zeros((10, 50)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(bad):
    x = np.ones((4, 1, 20), np.float32)
    x[2, 0, 5] = bad
    with pytest.raises(InputError, match="NaN or infinite.*sample 2"):
        fit(x)
    with pytest.raises(InputError, match="NaN or infinite"):
        as_float32_array(torch.from_numpy(x))


@pytest.mark.parametrize("arr", [np.array([[["a"] * 10]]), np.zeros((2, 1, 10), complex),
                                 np.zeros((2, 1, 10), bool), np.zeros((2, 1, 10), object)])
def test_non_numeric(arr):
    with pytest.raises(InputError, match="real numbers"):
        fit(arr)


def test_integer_input_is_accepted():
    x = np.arange(300).reshape(3, 1, 100) % 7
    assert fit(x, random_state=0).n_features_out == 9996


def test_channel_and_length_mismatch(model):
    with pytest.raises(InputError, match="3 channels but the model was fitted on 2"):
        check_against_model((4, 3, 50), model)
    with pytest.raises(InputError, match="length 60 but the model was fitted on length 50"):
        check_against_model((4, 2, 60), model)


def test_empty_fit():
    with pytest.raises(ValueError, match="empty"):
        fit(np.zeros((0, 1, 20), np.float32))


def test_transform_of_zero_rows_is_empty(model):
    assert transform(np.zeros((0, 2, 50), np.float32), model).shape == (0, model.n_features_out)
