"""Benchmarks: `python -m benchmarks [NAME ...]` prints one table per benchmark.

Each benchmark measures a naive approach in the same run and reports ratios, because absolute
times on shared 2-core machines are noisy.
"""
