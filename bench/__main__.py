"""python -m bench [launch_overhead] [hang_latency] [phase2] [ray_executor] [diagnose] [scale]
[startup] [matrix] [search]
(default: all)"""

from __future__ import annotations

import importlib
import sys

ALL = ("launch_overhead", "hang_latency", "phase2", "ray_executor", "diagnose", "scale",
       "startup", "matrix", "search")


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"bench: error: unknown benchmark {unknown[0]!r}: use {', '.join(ALL)}",
              file=sys.stderr)
        return 2
    for name in names or ALL:
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
