"""Research API behind the Jupyter notebooks in ``notebooks/``: short calls, no notebook-only logic.

Import the module a notebook needs (each pulls in only its own heavy dependencies):

- ``quant.research.store``: open the store read-only (snapshot first) or a synthetic stand-in.
- ``quant.research.market``: store overview, daily closes, one day of minute bars, quarantine,
  reconcile of the daily sources.
- ``quant.research.forecasting``: train the fused model and the LSTM on a short window, training
  curves, attention weights and gate values (read through forward hooks), the ablation table.
- ``quant.research.backtests``: load (or create) a backtest run, its accuracy table, the report
  plots, a small parameter sweep.

Every function returns a polars frame, a matplotlib ``Figure`` or a small dataclass; figures are
built without pyplot, so a notebook shows each one exactly once.
"""
