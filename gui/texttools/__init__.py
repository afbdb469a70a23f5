"""gui.texttools."""
