"""Market-data subcommands: ingest, sources, reconcile, db stats."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from feeds.adapters import fetch_and_ingest
from feeds.bulk import ingest_files
from feeds.ingest import IngestError, IngestReport, expand_paths, ingest_synthetic
from feeds.profiles import profiles
from feeds.read import sources as stored_sources
from feeds.reconcile import reconcile, reconcile_intraday
from feeds.stats import store_stats
from feeds.vendor import FeedError
from quant.cli._context import AppContext, pass_app

_SHOWN_SESSIONS = 5  # missing daily sessions named in the one-line summary


def _print_report(r: IngestReport, as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(r.as_dict()))
        return
    unmapped = (
        f"  unmapped columns (not stored): {', '.join(map(repr, r.unmapped_columns))}"
        if r.unmapped_columns
        else ""
    )
    if r.status == "unchanged":
        click.echo(f"unchanged  {r.path}  (same content already ingested){unmapped}")
        return
    missing = ""
    if r.missing_sessions:
        shown = ", ".join(map(str, r.missing_sessions[:_SHOWN_SESSIONS]))
        more = len(r.missing_sessions) - _SHOWN_SESSIONS
        missing = f"  missing daily sessions: {shown}{f' (+{more} more)' if more > 0 else ''}"
    click.echo(
        f"ingested   {r.path}  profile={r.profile} read={r.rows_read} loaded={r.rows_loaded} "
        f"inserted={r.rows_inserted} updated={r.rows_updated} "
        f"quarantined={r.rows_quarantined} dropped={r.rows_dropped} "
        f"sessions_with_gaps={r.sessions_with_gaps}{missing}{unmapped}"
    )


def ingest_synthetic_default(app: AppContext) -> IngestReport:
    d = app.config.data
    with app.writer("quant ingest --synthetic") as con:
        report = ingest_synthetic(
            con,
            start=d.synthetic_start,
            end=d.synthetic_end,
            seed=d.synthetic_seed,
            minute_sessions=d.synthetic_minute_sessions,
            symbol=d.synthetic_symbol,
        )
        if report.status == "ingested":
            app.publish(con)
        return report


def ingest_paths(
    app: AppContext,
    paths: list[Path],
    profile: str | None,
    symbol: str | None,
    as_json: bool = False,
) -> int:
    """Ingest files/directories; returns the number of files that could not be read."""
    failures = 0
    files = list(expand_paths(paths))
    with app.writer("quant ingest") as con:
        for r in ingest_files(con, files, profile=profile, symbol=symbol):
            if r.report is not None:
                _print_report(r.report, as_json)
            else:
                failures += 1
                click.echo(f"error      {r.error}", err=True)
        app.publish(con)
    return failures


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--profile", help="Source profile name (default: detected from the header).")
@click.option("--symbol", help="Symbol for files that carry none (overrides the profile default).")
@click.option(
    "--synthetic",
    is_flag=True,
    help="Also ingest the seeded SYNTHETIC market (as data.synthetic_symbol).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@pass_app
def ingest(
    app: AppContext,
    paths: tuple[Path, ...],
    profile: str | None,
    symbol: str | None,
    synthetic: bool,
    as_json: bool,
) -> None:
    """Ingest vendor files or directories into the store (one transaction per file).

    Invalid rows are quarantined with file, line and reason; re-ingesting the same content is a
    no-op.  The summary names header columns that no profile field reads (they are not stored)
    and XSHG sessions missing from a daily series.  Exits non-zero when a file cannot be read.
    """
    if not paths and not synthetic:
        raise click.UsageError("give PATH... and/or --synthetic")
    if synthetic:
        _print_report(ingest_synthetic_default(app), as_json)
    failures = ingest_paths(app, list(paths), profile, symbol, as_json)
    if failures:
        raise click.ClickException(f"{failures} file(s) could not be ingested")


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def sources_cmd(app: AppContext, as_json: bool) -> None:
    """List the source profiles (vendor layouts) the ingester understands."""
    rows = [
        {
            "profile": p.name,
            "source": p.source,
            "frequency": p.frequency.value,
            "kind": p.kind.value,
            "format": p.file_format,
            "default_symbol": p.symbol,
            "description": p.description,
        }
        for p in profiles().values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['profile']:<16} {r['source']:<12} {r['frequency']:<3} {r['kind']:<13} "
            f"{r['default_symbol'] or '-':<10} {r['description']}"
        )


@click.command("reconcile")
@click.argument("symbol")
@click.option("--include-synthetic", is_flag=True, help="Compare against the synthetic market too.")
@click.option(
    "--intraday", is_flag=True, help="Instead compare 1-minute bars resampled to sessions."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def reconcile_cmd(
    app: AppContext, symbol: str, include_synthetic: bool, intraday: bool, as_json: bool
) -> None:
    """Compare every pair of daily sources of SYMBOL on their common sessions.

    With --intraday, compare its 1-minute bars resampled to sessions with each daily source.
    """
    with app.connect(read_only=True) as con:
        if not stored_sources(con, symbol, "1d"):
            raise click.ClickException(f"no daily bars stored for {symbol}")
        if intraday:
            result = reconcile_intraday(con, symbol, include_synthetic=include_synthetic)
        else:
            result = reconcile(con, symbol, include_synthetic=include_synthetic)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo(f"{symbol}: fewer than two sources to compare")
    for r in result:
        diffs = "  ".join(
            f"{k}={v:.2e}" if v is not None else f"{k}=n/a" for k, v in r["max_rel_diff"].items()
        )
        click.echo(f"{' vs '.join(r['sources'])}: {r['common_sessions']} common sessions  {diffs}")


def _stats_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'symbol':<11} {'freq':<4} {'source':<12} {'rows':>9} "
        f"{'first':<26} {'last':<26} {'quar':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['symbol']:<11} {r['frequency']:<4} {r['source']:<12} {r['rows']:>9} "
            f"{r['first']:<26} {r['last']:<26} {r['quarantined']:>5}"
        )
    return "\n".join(lines)


@click.group("db")
def db_group() -> None:
    """Inspect the store; export it to a Parquet lake."""


@db_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def db_stats(app: AppContext, as_json: bool) -> None:
    """Rows, first/last bar and quarantined rows per (symbol, frequency, source)."""
    with app.connect(read_only=True) as con:
        rows = store_stats(con)
    click.echo(json.dumps(rows, indent=2) if as_json else _stats_table(rows))


@click.command("fetch")
@click.argument("adapter")
@click.argument("symbol")
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First date.")
@click.option("--end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last date.")
@pass_app
def fetch_cmd(app: AppContext, adapter: str, symbol: str, start: datetime, end: datetime) -> None:
    """Fetch SYMBOL with a vendor ADAPTER (needs internet and the optional extra) and ingest it.

    Adapters: akshare-index-daily, akshare-index-1m (000300.SH) and akshare-if-main-1m (IF.CFE,
    the main contract per session); pip install '.[akshare]'.  The fetched CSV is kept under
    var/fetched/ so that every row still has a file and line.
    """
    keep = Path(app.config.store.path).parent / "fetched"
    with app.writer(f"quant fetch {adapter} {symbol}") as con:
        try:
            report = fetch_and_ingest(con, adapter, symbol, start.date(), end.date(), keep_dir=keep)
        except (FeedError, IngestError, KeyError) as exc:
            raise click.ClickException(str(exc)) from exc
        app.publish(con)
    _print_report(report)


def register(group: click.Group) -> None:
    from quant.cli.lake import db_export

    db_group.add_command(db_export)
    for cmd in (ingest, sources_cmd, reconcile_cmd, db_group, fetch_cmd):
        group.add_command(cmd)
