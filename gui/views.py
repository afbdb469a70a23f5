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
    ("Chat", "gui.chat.view:ChatView"),
    ("Documents", "gui.documents.view:DocumentsView"),
    ("Summarize", "gui.texttools.summarize_view:SummarizeView"),
    ("Code", "gui.texttools.code_view:CodeView"),
    ("Translate", "gui.texttools.translate_view:TranslateView"),
    ("Notebook", "gui.texttools.notebook_view:NotebookView"),
    ("Fine-tune", "gui.finetune.view:FinetuneView"),
    ("Compare", "gui.finetune.compare_view:CompareView"),
    ("Lab", "gui.lab.view:LabView"),
    ("Server", "gui.server.view:ServerView"),
]
