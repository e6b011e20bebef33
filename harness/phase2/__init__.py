"""The Phase 2 runner: run a grid of training evaluations reliably and fast.

Library use::

    from harness.phase2 import RunOptions, run
    results = run(None, None, RunOptions(max_evals=6, out=Path("out")))
    on_ray = run(None, None, RunOptions(executor="ray", ray_address="HEAD:6379",
                                        out=Path("out-ray")))

A search submits evaluations one by one (docs/search.md)::

    with Pool(template, RunOptions(tasks_budget=60, out=out, metric="loss")) as pool:
        ev = pool.submit({"lr": 1e-3}, on_report=callback).result()

`None` template/grid mean the reference workload and the default 20-point
threshold grid around the field's 17/18/19. Imported lazily: the CLI builds its
parser without loading the runner.
"""

__all__ = ["Evaluated", "Pool", "RunOptions", "plan", "run"]


def __getattr__(name: str):
    if name in ("Pool", "Evaluated"):
        from harness.phase2 import pool

        return getattr(pool, name)
    if name in __all__:
        from harness.phase2 import runner

        return getattr(runner, name)
    raise AttributeError(name)
