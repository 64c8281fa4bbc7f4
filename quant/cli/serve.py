"""``quant serve``: the broker signal API under uvicorn (loopback by default)."""

from __future__ import annotations

import click

from quant.cli._context import AppContext, config_default, pass_app


@click.command("serve")
@click.option("--host", default=None, help=config_default("api.host", "Bind address"))
@click.option("--port", type=int, default=None, help=config_default("api.port", "TCP port"))
@click.option(
    "--max-batch",
    type=click.IntRange(1, 1024),
    default=None,
    help=config_default("api.max_batch", "1 disables batching"),
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(0, 1000),
    default=None,
    help=config_default("api.max_wait_ms"),
)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    default=None,
    help=config_default("api.workers", "Server processes sharing the port"),
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@pass_app
def serve(
    app: AppContext,
    host: str | None,
    port: int | None,
    max_batch: int | None,
    max_wait_ms: float | None,
    workers: int | None,
    access_log: bool,
) -> None:
    """Serve signals and forecasts from the published snapshot of the store.

    The API never opens the store itself: it reads ``<store>.snapshot.duckdb`` (published by the
    pipeline, `quant predict` or `quant main`) and re-opens it when a new one appears.  API keys
    come from `quant keys create`.  With `--workers N` a supervisor runs N server processes
    on the port (each with its own batcher, model and hot reload) and replaces any that dies.
    """
    import uvicorn

    from quant.api.app import create_app

    over = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
            "workers": workers,
        }.items()
        if v is not None
    }
    api_cfg = type(app.config.api).model_validate({**app.config.api.model_dump(), **over})
    cfg = app.config.model_copy(update={"api": api_cfg})
    api = cfg.api
    click.echo(
        f"serving {cfg.store.path} snapshot on http://{api.host}:{api.port} "
        f"(batch {api.max_batch}, wait {api.max_wait_ms} ms, {api.workers} worker(s))",
        err=True,
    )
    if api.workers > 1:
        from quant.api.workers import serve_workers

        serve_workers(cfg, access_log=access_log)
        return
    from quant.api.workers import uvicorn_options

    uvicorn.run(create_app(cfg), host=api.host, port=api.port, **uvicorn_options(access_log))


def register(group: click.Group) -> None:
    group.add_command(serve)
