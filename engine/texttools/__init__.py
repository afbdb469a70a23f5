"""engine.texttools."""
