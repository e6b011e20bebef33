"""A small multi-device training loop for GPU hosts without TensorFlow: the GPU gate's
stand-in command (`--repro-command "python tests/gpu/gpu_train.py"`).

PyTorch where it is installed, else JAX, else TensorFlow: one replica per visible GPU, a few hundred
matmul steps each, "work started" once every device holds its data and "training done"
at the end (the --work-pattern / --done-pattern of the gate). --fill F first takes F of
each device's free memory and holds it while training (GPU-memory admission tests).
With no visible GPU it trains on the CPU and says so, without an error: exactly what
CUDA_VISIBLE_DEVICES='' does to a real training command.
"""

from __future__ import annotations

import argparse
import sys
import time


def _torch(steps: int, fill: float, hold_s: float) -> list[str]:
    import torch

    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    devices = devices or [torch.device("cpu")]
    held = []
    if fill and devices[0].type == "cuda":
        for d in devices:
            free, _ = torch.cuda.mem_get_info(d)
            held.append(torch.empty(int(free * fill), dtype=torch.uint8, device=d))
    weights = [torch.randn(1024, 1024, device=d) for d in devices]
    print(f"work started on {[str(d) for d in devices]}", flush=True)
    end = time.monotonic() + hold_s
    step = 0
    while step < steps or time.monotonic() < end:
        for w in weights:
            w.copy_(torch.tanh(w @ w) * 0.5)
        step += 1
        if step % 50 == 0:
            if devices[0].type == "cuda":
                torch.cuda.synchronize()
            print(f"step {step}", flush=True)
    del held
    return [str(d) for d in devices]


def _jax(steps: int, fill: float, hold_s: float) -> list[str]:
    import jax
    import jax.numpy as jnp

    devices = [d for d in jax.devices() if d.platform == "gpu"] or jax.devices("cpu")
    weights = [jax.device_put(jnp.ones((1024, 1024)) * 0.01, d) for d in devices]
    print(f"work started on {[str(d) for d in devices]}", flush=True)
    end = time.monotonic() + hold_s
    step = 0
    while step < steps or time.monotonic() < end:
        weights = [jnp.tanh(w @ w) * 0.5 for w in weights]
        step += 1
        if step % 50 == 0:
            for w in weights:
                w.block_until_ready()
            print(f"step {step}", flush=True)
    return [str(d) for d in devices]


def _tensorflow(steps: int, fill: float, hold_s: float) -> list[str]:
    import tensorflow as tf

    names = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/CPU:0"]
    weights = []
    for name in names:
        with tf.device(name):
            weights.append(tf.Variable(tf.ones((1024, 1024)) * 0.01))
    print(f"work started on {names}", flush=True)
    end = time.monotonic() + hold_s
    step = 0
    while step < steps or time.monotonic() < end:
        for name, w in zip(names, weights, strict=True):
            with tf.device(name):
                w.assign(tf.tanh(w @ w) * 0.5)
        step += 1
        if step % 50 == 0:
            print(f"step {step}", flush=True)
    return names


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--fill", type=float, default=0.0, help="share of free memory to hold")
    parser.add_argument("--hold", type=float, default=0.0, help="train at least this long (s)")
    args = parser.parse_args()
    for name, loop in (("torch", _torch), ("jax", _jax), ("tensorflow", _tensorflow)):
        try:
            __import__(name)
        except ImportError:
            continue
        used = loop(args.steps, args.fill, args.hold)
        break
    else:
        sys.exit("gpu_train.py: needs PyTorch, JAX or TensorFlow")
    print(f"training done on {used}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
