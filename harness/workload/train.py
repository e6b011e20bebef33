"""TensorFlow side of the workload: thread pools, devices, MirroredStrategy, k-fold fit.

Imported only after the `start` event is written, so a child that dies while
TensorFlow initialises has still told us its limits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

BATCH_SIZE = 64
LEARNING_RATE = 0.01
_BAR_WIDTH = 30


@dataclass(frozen=True)
class Devices:
    kind: str  # "gpu" | "cpu"
    names: list[str]
    replicas: int
    physical_gpus: int
    strategy: str


def configure_threads(host_cores: int) -> dict:
    """Size TF's pools like a host with host_cores cores; explicit env vars win.

    Like the TF guide's examples, a runtime that is already initialised (a forked
    child of a parent that used TF) is tolerated and reported, not fatal.
    """
    intra = int(os.environ.get("TF_NUM_INTRAOP_THREADS") or host_cores)
    inter = int(os.environ.get("TF_NUM_INTEROP_THREADS") or host_cores)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:
        return {"intra_op": None, "inter_op": None, "not_applied": str(exc)}
    return {"intra_op": intra, "inter_op": inter}


def seed(value: int) -> None:
    tf.keras.utils.set_random_seed(value)


def physical_gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def make_strategy(device_mode: str, cpu_devices: int) -> tuple[tf.distribute.Strategy, Devices]:
    """MirroredStrategy over every GPU (multi), or over N logical CPUs on a GPU-less host."""
    gpus = physical_gpus()
    if gpus:
        for gpu in gpus:
            with contextlib.suppress(RuntimeError):  # runtime already up (inherited via fork)
                tf.config.experimental.set_memory_growth(gpu, True)
        names = [d.name for d in tf.config.list_logical_devices("GPU")]
        kind = "gpu"
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        count = cpu_devices if device_mode == "multi" else 1
        with contextlib.suppress(RuntimeError):  # runtime already up: mirror what exists
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        names = [d.name for d in tf.config.list_logical_devices("CPU")]
        kind = "cpu"
    if device_mode == "single":
        names = names[:1]
        strategy: tf.distribute.Strategy = tf.distribute.OneDeviceStrategy(names[0])
    else:
        strategy = tf.distribute.MirroredStrategy(names)
    return strategy, Devices(kind, names, strategy.num_replicas_in_sync, len(gpus),
                             type(strategy).__name__)


def device_bytes(names: list[str]) -> dict[str, dict[str, int]]:
    """The program's own account of device work: bytes TensorFlow allocated on each
    replica device, now and at peak (0 on CPU, where TF does not track them)."""
    found = {}
    for name in names:
        try:
            info = tf.config.experimental.get_memory_info(name)
        except (ValueError, RuntimeError):  # a device kind without a tracking allocator
            info = {}
        found[name] = {"current": int(info.get("current", 0)), "peak": int(info.get("peak", 0))}
    return found


def _build_model(n_features: int) -> tf.keras.Model:
    model = tf.keras.Sequential([
        tf.keras.Input((n_features,)),
        tf.keras.layers.Dense(32, activation="relu", name="hidden_1"),
        tf.keras.layers.Dense(16, activation="relu", name="hidden_2"),
        tf.keras.layers.Dense(1, activation="sigmoid", name="output"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _weight_report(model: tf.keras.Model) -> str:
    """Per-tensor stats and a 10-bin histogram: what a debug log shows per step."""
    parts = []
    for var in model.weights:
        w = np.asarray(var.numpy()).ravel()
        hist, _ = np.histogram(w, bins=10)
        parts.append(f"{var.path}: mean={w.mean():+.5f} std={w.std():.5f} "
                     f"min={w.min():+.5f} max={w.max():+.5f} hist={','.join(map(str, hist))}")
    return " | ".join(parts)


class _Progress(tf.keras.callbacks.Callback):
    """work_started after the first step ran on the devices; debug output at verbosity 2."""

    def __init__(self, fold: int, *, steps: int, epochs: int, verbosity: int,
                 on_first_step: Callable[[], None] | None,
                 validation: tuple[np.ndarray, np.ndarray]):
        super().__init__()
        self.fold, self.steps, self.epochs, self.verbosity = fold, steps, epochs, verbosity
        self.on_first_step = on_first_step
        self.validation = validation
        self.epoch = 0
        self.t0 = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.on_first_step is not None:
            self.on_first_step()
            self.on_first_step = None
        if self.verbosity >= 2:
            logs = logs or {}
            done = int(_BAR_WIDTH * (batch + 1) / self.steps)
            bar = "=" * done + ">" + "." * (_BAR_WIDTH - done)
            print(f"fold {self.fold} epoch {self.epoch + 1}/{self.epochs} "
                  f"step {batch + 1}/{self.steps} [{bar}] "
                  f"loss={logs.get('loss', float('nan')):.5f} "
                  f"accuracy={logs.get('accuracy', float('nan')):.5f} "
                  f"elapsed={time.monotonic() - self.t0:.3f}s | {_weight_report(self.model)}")

    def on_epoch_end(self, epoch, logs=None):
        if self.verbosity >= 1:
            logs = logs or {}
            print(f"fold {self.fold} epoch {epoch + 1}/{self.epochs} "
                  f"loss={logs.get('loss', float('nan')):.4f} "
                  f"accuracy={logs.get('accuracy', float('nan')):.4f}")
        if self.verbosity >= 2:  # the per-sample validation dump of a debug run
            x, y = self.validation
            p = np.clip(predict(self.model, x), 1e-7, 1 - 1e-7)
            losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            for i, (xi, pi, yi, li) in enumerate(zip(x, p, y, losses, strict=True)):
                verdict = "hit" if (pi > 0.5) == (yi > 0.5) else "miss"
                head = ",".join(f"{v:+.3f}" for v in xi[:4])
                print(f"fold {self.fold} epoch {epoch + 1}/{self.epochs} val[{i}] "
                      f"x[:4]=({head}) p={pi:.6f} y={int(yi)} bce={li:.6f} {verdict}")
        sys.stdout.flush()


# One input pipeline per replica, read on the host: no MultiDeviceIterator, whose
# teardown cancels in-flight fetches and can crash TF (local rendezvous race,
# tensorflow/tensorflow#62523; seen here as a SIGSEGV once in ~1500 runs).
_INPUT = tf.distribute.InputOptions(
    experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
    experimental_fetch_to_device=False)


def _distributed(strategy: tf.distribute.Strategy, x: np.ndarray, y: np.ndarray,
                 seed: int):
    """Each replica reads its own shard, shuffled, repeated, in whole batches."""

    def per_replica(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        data = tf.data.Dataset.from_tensor_slices((x, y))
        data = data.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat()
        return data.batch(ctx.get_per_replica_batch_size(BATCH_SIZE), drop_remainder=True)

    return strategy.distribute_datasets_from_function(per_replica, options=_INPUT)


class FoldTrainer:
    """One compiled model reused across folds: weights and optimizer state are reset per
    fold, so each fold trains from the same start without re-tracing tf.functions."""

    def __init__(self, strategy: tf.distribute.Strategy, n_features: int) -> None:
        self.strategy = strategy
        with strategy.scope():
            self.model = _build_model(n_features)
            self.model.optimizer.build(self.model.trainable_variables)
        self._initial = self.model.get_weights()
        self._initial_opt = [v.numpy() for v in self.model.optimizer.variables]

    def _reset(self) -> None:
        self.model.set_weights(self._initial)
        for var, value in zip(self.model.optimizer.variables, self._initial_opt, strict=True):
            var.assign(value)

    def run_fold(self, fold: int, x: np.ndarray, y: np.ndarray, train_idx: np.ndarray,
                 val_idx: np.ndarray, epochs: int, verbosity: int,
                 on_first_step: Callable[[], None] | None, pipeline: str = "per-replica"
                 ) -> float:
        """Train on one fold from the initial weights; validation accuracy is its score."""
        self._reset()
        steps = max(1, len(train_idx) // BATCH_SIZE)
        progress = _Progress(fold, steps=steps, epochs=epochs, verbosity=verbosity,
                             on_first_step=on_first_step, validation=(x[val_idx], y[val_idx]))
        if pipeline == "keras":  # the common field pattern: numpy in, Keras distributes
            self.model.fit(x[train_idx], y[train_idx], epochs=epochs, batch_size=BATCH_SIZE,
                           verbose=0, shuffle=True, callbacks=[progress])
        else:
            data = _distributed(self.strategy, x[train_idx], y[train_idx], seed=fold)
            self.model.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0,
                           shuffle=False, callbacks=[progress])  # the pipeline shuffles
        hits = (predict(self.model, x[val_idx]) > 0.5) == (y[val_idx] > 0.5)
        return float(hits.mean())


def predict(model: tf.keras.Model, x: np.ndarray) -> np.ndarray:
    """Probabilities from one direct call: no distributed iterator to tear down."""
    return np.asarray(model(x, training=False)).ravel()
