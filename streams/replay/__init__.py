"""Replay: re-judge a window of history into a replay namespace (window, worker, rows, diff, curate)."""
