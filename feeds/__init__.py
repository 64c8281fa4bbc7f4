"""Market data: vendor files and adapters into an embedded DuckDB store, validated on XSHG."""
