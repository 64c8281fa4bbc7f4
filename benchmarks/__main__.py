"""Run benchmarks by name: ``python -m benchmarks`` (all), ``python -m benchmarks ingest``, or
one benchmark with its options: ``python -m benchmarks scale --json scale.json``."""

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
    """``NAME... [--options]``: options after the names go to the one benchmark named."""
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or list(BENCHMARKS), argv[split:]
    if options and len(names) != 1:
        print(
            "options go to exactly one benchmark: python -m benchmarks NAME --opt", file=sys.stderr
        )
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
