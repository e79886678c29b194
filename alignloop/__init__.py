"""alignloop: continuous alignment of LLM agents from their own production traffic."""
__version__ = "0.1.0"
