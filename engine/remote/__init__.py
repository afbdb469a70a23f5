"""Models on OpenAI-compatible servers (another Hearth, vLLM, llama.cpp, Ollama, TGI, LM Studio...).

``connect_model(RemoteServer(url, key), model)`` returns a :class:`RemoteModel`, which the
engine's ``chat``, ``generate`` and code completion accept like a LoadedModel. Modules:
``client`` (the openai client, strict timeouts, no retries), ``errors`` (typed errors),
``stream`` (streaming with cancel; a dropped connection keeps what arrived), ``model``,
``estimate`` (token counts without the server's tokenizer), ``servers`` (the saved list and
keys: keychain or a private file), ``tasks``.
"""

from engine.remote.client import RemoteServer, list_models  # noqa: F401
from engine.remote.model import RemoteModel, connect_model  # noqa: F401
