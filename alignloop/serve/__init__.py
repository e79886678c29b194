"""`alignloop serve`: an OpenAI-compatible HTTP server over `trainers.serving.runtime.ServingRuntime`."""
