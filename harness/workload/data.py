"""A deterministic synthetic dataset and the threshold selection the field tunes.

Each row has 16 features, a binary label and three quality indicators I, P, R
(higher = noisier label). Phase 2 searches thresholds: a row is kept when all
three indicators are at or below their thresholds, trading cleaner labels
against fewer samples. NumPy only, no downloads.
"""

from __future__ import annotations

import numpy as np

ROWS_AT_100_PERCENT = 6000
N_FEATURES = 16
_INDICATOR_RANGE = 30.0


def make(seed: int, data_percentage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features float32 [n,16], labels float32 [n], indicators float32 [n,3])."""
    rng = np.random.default_rng(seed)
    rows = max(1, int(ROWS_AT_100_PERCENT * data_percentage / 100.0))
    x = rng.normal(size=(rows, N_FEATURES)).astype(np.float32)
    true_w = rng.normal(size=N_FEATURES).astype(np.float32)
    clean = (x @ true_w > 0).astype(np.float32)
    indicators = rng.uniform(0.0, _INDICATOR_RANGE, size=(rows, 3)).astype(np.float32)
    noise_rate = np.clip((indicators.mean(axis=1) - 5.0) / 50.0, 0.0, 0.45)
    flipped = rng.uniform(size=rows) < noise_rate
    labels = np.where(flipped, 1.0 - clean, clean).astype(np.float32)
    return x, labels, indicators


def select(indicators: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Indices of rows whose I, P and R indicators are all within their thresholds."""
    keep = np.all(indicators <= np.asarray(thresholds, dtype=np.float32), axis=1)
    return np.flatnonzero(keep)


def folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, validation) index splits of a seeded permutation of range(n)."""
    order = np.random.default_rng(seed + 1).permutation(n)
    parts = np.array_split(order, k)
    return [(np.concatenate(parts[:i] + parts[i + 1:]), parts[i]) for i in range(k)]


def holdout(n: int, seed: int, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """One (train, validation) split for --mode train."""
    order = np.random.default_rng(seed + 1).permutation(n)
    cut = max(1, int(n * fraction))
    return order[cut:], order[:cut]
