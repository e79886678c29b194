"""The export tests' tables (shared with `alignloop bench ingest`)."""
from alignloop.bench._export_rows import LEAKED_EMAIL, pref_row, seed, sft_row, trace_row, write_table

__all__ = ["LEAKED_EMAIL", "pref_row", "seed", "sft_row", "trace_row", "write_table"]
