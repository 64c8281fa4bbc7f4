"""vectorbt backtests of forecast signals with China-market costs, and accuracy reports."""
