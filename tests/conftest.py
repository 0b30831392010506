"""Shared fixtures: real UCR/UEA datasets shipped inside aeon's wheel (no downloads)."""

from __future__ import annotations

import functools

import numpy as np
import pytest


@functools.cache
def load_split(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset that ships with aeon, as float32 (n, channels, length) and labels."""
    from aeon.datasets import load_classification

    x, y = load_classification(name, split=split)
    return np.asarray(x, dtype=np.float32), np.asarray(y)


@pytest.fixture(scope="session")
def gunpoint():
    xtr, ytr = load_split("GunPoint", "train")
    xte, yte = load_split("GunPoint", "test")
    return xtr, ytr, xte, yte


@pytest.fixture(scope="session")
def basicmotions():
    xtr, ytr = load_split("BasicMotions", "train")
    xte, yte = load_split("BasicMotions", "test")
    return xtr, ytr, xte, yte
