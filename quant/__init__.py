"""The CSI 300 forecasting service: configuration, registry, pipeline, scheduler, API and CLI."""
