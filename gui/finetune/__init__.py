"""gui.finetune."""
