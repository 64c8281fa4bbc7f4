"""The broker signal HTTP API (FastAPI): signals, forecasts, models, health and metrics.

Import ``quant.api.app.create_app`` for the application; this package's ``__init__`` stays light
so that ``quant.config`` can import ``quant.api.settings`` without loading FastAPI or torch.
"""
