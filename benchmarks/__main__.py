"""Run benchmarks by name: ``python -m benchmarks`` (all) or ``python -m benchmarks ingest``.

Options after the names go to every named benchmark, e.g. ``python -m benchmarks api --json F``.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "ingest": "benchmarks.bench_ingest",
    "models": "benchmarks.bench_models",
    "backtest": "benchmarks.bench_backtest",
    "pipeline": "benchmarks.bench_pipeline",
    "api": "benchmarks.bench_api",
    "scale": "benchmarks.bench_scale",
}


def main(argv: list[str]) -> int:
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or list(BENCHMARKS), argv[split:]
    if options and len(names) != 1:
        print("options (e.g. --json FILE) need exactly one benchmark name", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ModuleNotFoundError as exc:
            print(f"== {name}: not available ({exc})")
            continue
        print(f"== {name}")
        module.main(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
