"""End-to-end accuracy in a scikit-learn Pipeline on the UCR/UEA default splits (seed 0)."""

import numpy as np
import pytest
from conftest import load_split

from rocketstream import MiniRocketTransformer


@pytest.mark.parametrize("name,minimum", [("GunPoint", 0.98), ("BasicMotions", 1.0), ("ArrowHead", 0.85)])
def test_pipeline_accuracy(name, minimum):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr = load_split(name, "train")
    xte, yte = load_split(name, "test")
    pipe = make_pipeline(
        MiniRocketTransformer(random_state=0),
        StandardScaler(with_mean=False),
        RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)),
    )
    pipe.fit(xtr, ytr)
    accuracy = float(np.mean(pipe.predict(xte) == yte))
    assert accuracy >= minimum, f"{name}: accuracy {accuracy:.3f} < {minimum}"
    assert pipe[0].n_features_out_ == 9996
