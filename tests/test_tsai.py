"""tsai-compatible names: the offline (features + head) and online (MiniRocket module) workflows."""

import numpy as np
import pytest
import torch

from rocketstream import MiniRocket, MiniRocketFeatures, MiniRocketHead, get_minirocket_features
from rocketstream.api import NotFittedError
from rocketstream.core import InputError, fit, transform


def _labels(ytr, yte):
    classes = np.unique(ytr)
    return torch.as_tensor(np.searchsorted(classes, ytr)), torch.as_tensor(np.searchsorted(classes, yte))


def _accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@pytest.fixture(scope="module")
def gunpoint_features(gunpoint):
    xtr, _, xte, _ = gunpoint
    mrf = MiniRocketFeatures(xtr.shape[1], xtr.shape[2], random_state=0).fit(xtr)
    ftr = get_minirocket_features(xtr, mrf, chunksize=16, use_cuda=False)
    fte = get_minirocket_features(xte, mrf, chunksize=1024, use_cuda=False)
    return mrf, ftr, fte


def test_num_features_and_frozen_backbone():
    mrf = MiniRocketFeatures(1, 150)
    assert mrf.num_features == 9996 and not mrf.is_fitted
    assert MiniRocketFeatures(3, 500, num_features=1000).num_features == 924
    assert list(mrf.parameters()) == []
    model = MiniRocket(1, 2, 150)
    assert model.head_nf == 9996 and list(model.backbone.parameters()) == []
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias", "head.2.weight", "head.2.bias"}


def test_features_equal_core_for_any_chunksize(gunpoint, gunpoint_features):
    xtr, _, xte, _ = gunpoint
    mrf, ftr, fte = gunpoint_features
    assert ftr.shape == (50, 9996, 1) and fte.shape == (150, 9996, 1) and ftr.dtype == np.float32
    params = fit(xtr, random_state=0)
    assert mrf.minirocket_parameters.equals(params)
    np.testing.assert_array_equal(ftr[..., 0], transform(xtr, params).cpu().numpy())
    np.testing.assert_array_equal(fte[:20, :, 0], transform(xte[:20], params).cpu().numpy())
    big = get_minirocket_features(xtr, mrf, chunksize=1024, use_cuda=False)
    np.testing.assert_array_equal(big, ftr)
    as_tensor = get_minirocket_features(torch.from_numpy(xtr), mrf, chunksize=7, use_cuda=False, to_np=False)
    assert torch.is_tensor(as_tensor) and as_tensor.device.type == "cpu"
    np.testing.assert_array_equal(as_tensor.cpu().numpy(), ftr)
    # the module itself: (B, num_features), no grad
    out = mrf(torch.from_numpy(xte[:4]))
    assert out.shape == (4, 9996) and not out.requires_grad
    np.testing.assert_array_equal(out.cpu().numpy(), fte[:4, :, 0])


def test_offline_head_training(gunpoint, gunpoint_features):
    _, ytr, _, yte = gunpoint
    mrf, ftr, fte = gunpoint_features
    ytr_t, yte_t = _labels(ytr, yte)
    ftr, fte = torch.from_numpy(ftr), torch.from_numpy(fte)
    mean, std = ftr.mean(0, keepdim=True), ftr.std(0, keepdim=True) + 1e-8
    ztr, zte = (ftr - mean) / std, (fte - mean) / std

    torch.manual_seed(0)
    head = MiniRocketHead(mrf.num_features, 2, bn=False)
    opt = torch.optim.Adam(head.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    assert _accuracy(head, zte, yte_t) == pytest.approx(float((yte_t == 0).float().mean()))  # zero init
    for _ in range(20):
        head.train()
        perm = torch.randperm(len(ztr))
        for i in range(0, len(ztr), 16):
            batch = perm[i : i + 16]
            opt.zero_grad()
            loss_fn(head(ztr[batch]), ytr_t[batch]).backward()
            opt.step()
    acc = _accuracy(head, zte, yte_t)
    assert acc >= 0.95, acc
    # the head also takes (B, c_in)
    np.testing.assert_array_equal(head(zte[:, :, 0]).detach().cpu().numpy(), head(zte).detach().cpu().numpy())


def test_online_minirocket_trains(gunpoint):
    xtr, ytr, xte, yte = gunpoint
    ytr_t, yte_t = _labels(ytr, yte)
    xtr_t, xte_t = torch.from_numpy(xtr), torch.from_numpy(xte)
    torch.manual_seed(0)
    model = MiniRocket(1, 2, xtr.shape[-1], num_features=2000, random_state=0).fit(xtr)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_losses = []
    for _ in range(8):
        model.train()
        perm = torch.randperm(len(xtr_t))
        total = 0.0
        for i in range(0, len(perm), 10):
            batch = perm[i : i + 10]
            opt.zero_grad()
            loss = loss_fn(model(xtr_t[batch]), ytr_t[batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        epoch_losses.append(total / len(perm))
    assert epoch_losses[0] > 0.2  # starts near log(2) from the zero-initialised head
    assert min(epoch_losses[-2:]) < 0.5 * epoch_losses[0], epoch_losses
    acc = _accuracy(model, xte_t, yte_t)
    assert acc >= 0.9, acc


def test_state_dict_round_trip(tmp_path, basicmotions):
    xtr, _, xte, _ = basicmotions
    mrf = MiniRocketFeatures(6, 100, num_features=1000, random_state=3).fit(xtr)
    path = tmp_path / "mrf.pt"
    torch.save(mrf.state_dict(), path)
    fresh = MiniRocketFeatures(6, 100, num_features=1000)  # different (unset) seed
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.is_fitted and fresh.minirocket_parameters.equals(mrf.minirocket_parameters)
    reloaded = fresh(torch.from_numpy(xte)).cpu().numpy()
    np.testing.assert_array_equal(reloaded, mrf(torch.from_numpy(xte)).cpu().numpy())

    model = MiniRocket(6, 4, 100, num_features=1000, random_state=3).fit(xtr)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    again = MiniRocket(6, 4, 100, num_features=1000)
    again.load_state_dict(torch.load(path, weights_only=True))
    model.eval(), again.eval()
    with torch.no_grad():
        x = torch.from_numpy(xte)
        np.testing.assert_array_equal(again(x).cpu().numpy(), model(x).cpu().numpy())

    # a state_dict of another shape is refused loudly
    other = MiniRocketFeatures(6, 100, num_features=1000, max_dilations_per_kernel=4)
    with pytest.raises(RuntimeError):
        other.load_state_dict(mrf.state_dict())


def test_dtype_casts_keep_biases_exact(basicmotions):
    xtr, _, xte, _ = basicmotions
    mrf = MiniRocketFeatures(6, 100, num_features=840, random_state=1).fit(xtr)
    before = mrf(torch.from_numpy(xte))
    mrf.double()
    assert mrf.biases.dtype == torch.float32
    np.testing.assert_array_equal(mrf(torch.from_numpy(xte).double()).cpu().numpy(), before.cpu().numpy())


def test_fit_chunksize_is_seeded_subset(gunpoint):
    xtr = gunpoint[0]
    a = MiniRocketFeatures(1, 150, num_features=840, random_state=7).fit(xtr, chunksize=20)
    b = MiniRocketFeatures(1, 150, num_features=840, random_state=7).fit(torch.from_numpy(xtr), chunksize=20)
    assert a.minirocket_parameters.equals(b.minirocket_parameters)
    assert a.minirocket_parameters.n_fit_examples == 20
    idx = np.sort(np.random.RandomState(7).choice(len(xtr), 20, replace=False))
    assert a.minirocket_parameters.equals(fit(xtr[idx], num_features=840, random_state=7))
    # chunksize >= n uses every row
    full = MiniRocketFeatures(1, 150, num_features=840, random_state=7).fit(xtr, chunksize=1000)
    assert full.minirocket_parameters.equals(fit(xtr, num_features=840, random_state=7))


def test_errors(gunpoint):
    xtr = gunpoint[0]
    mrf = MiniRocketFeatures(1, 150, num_features=840, random_state=0)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        mrf(torch.from_numpy(xtr[:2]))
    with pytest.raises(InputError, match="c_in=2, seq_len=150"):
        MiniRocketFeatures(2, 150).fit(xtr)
    mrf.fit(xtr)
    with pytest.raises(InputError, match="length 100 but the model was fitted on length 150"):
        mrf(torch.from_numpy(xtr[:2, :, :100]))
    with pytest.raises(InputError, match="3-D"):
        get_minirocket_features(xtr[:, 0], mrf, use_cuda=False)
    with pytest.raises(ValueError, match="at least 9"):
        MiniRocketFeatures(1, 8)
