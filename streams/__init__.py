"""Stream processing: pure step logic (scrubbers, judges, drift monitors) and thin Faust adapters.

Never imports torch/transformers; anything model-backed is imported lazily by the code that needs it.
"""
