"""Cyclic garbage collection between batches, not during them.

A batch step keeps what it makes (records, traces, verdicts, rows, events) alive until the batch is done, so each
automatic collection during the step scans all of it again, and a middle-generation collection late in a large
batch walks hundreds of thousands of objects: about a fifth of a replay step's CPU at 5,000 records (measured in
process). Reference counting frees almost all of it when the batch is done; then automatic collection resumes and
its next, young-generation pass finds little alive. Cycles are still collected, between batches.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def between_batches() -> Iterator[None]:
    """Automatic collection paused for the block (a batch), and resumed after it if it was on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
