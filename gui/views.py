"""The views in the window's side bar, in order.

Each entry is (title, "module:Class"). A view class is constructed as
``Class(window)`` where ``window`` is the MainWindow: it reaches the shared
worker as ``window.client``, the chat sampling settings as
``window.sampling_panel.config()``, the loaded model's description as
``window.model_info`` (None until loaded; ``window.model_changed`` signals
changes) and reports problems with ``window.show_error(text)``.
Modules are imported when the window is built, so keep torch out of them.
"""

VIEWS: list[tuple[str, str]] = [
    ("Chat", "gui.chat_view:ChatView"),
    ("Summarize", "gui.summarize_view:SummarizeView"),
    ("Code", "gui.code_view:CodeView"),
    ("Translate", "gui.translate_view:TranslateView"),
    ("Notebook", "gui.notebook_view:NotebookView"),
    ("Fine-tune", "gui.finetune_view:FinetuneView"),
    ("Compare", "gui.compare_view:CompareView"),
    ("Lab", "gui.lab_view:LabView"),
]
