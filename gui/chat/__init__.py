"""gui.chat."""
