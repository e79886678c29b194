"""Benchmarks; each module defines ``register(bench_app: typer.Typer)`` adding one command."""
