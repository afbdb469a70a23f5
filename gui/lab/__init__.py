"""gui.lab."""
