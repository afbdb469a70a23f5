"""The Server view: Hearth as an OpenAI-compatible server."""
