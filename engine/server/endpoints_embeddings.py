"""``POST /v1/embeddings`` in the OpenAI shape, served by the documents' sentence-embedding model.

Runs on the scheduler's own "embeddings" thread, so an embedding request never
waits behind a chat reply (nor holds one up). ``input`` is a string or a list
of strings; token-id inputs are refused with a 400 naming the field, as is a
``dimensions`` other than the model's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.server.errors import APIError, bad_request, from_engine_error, not_found, unsupported

DEVICE = "embeddings"


def routes(state: Any) -> list[Route]:
    return [Route("/v1/embeddings", embeddings, methods=["POST"])]


def parse_embeddings(body: Any) -> tuple[str, list[str], str, int | None]:
    """(model, texts, encoding_format, dimensions) from a request body, or a 400 naming the field."""
    from engine.rag.embeddings_api import MAX_INPUTS

    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: the embedding model's name (GET /v1/models does not list it; "
                          "this server embeds with all-MiniLM-L6-v2 unless configured otherwise).", "model")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise bad_request("'input' must be a string or a non-empty list of strings.", "input")
    if not all(isinstance(t, str) for t in texts):
        raise unsupported("input", "token ids are not accepted; send the text itself.")
    if len(texts) > MAX_INPUTS:
        raise bad_request(f"'input' has {len(texts)} items; at most {MAX_INPUTS} per request.", "input")
    if any(not t.strip() for t in texts):
        raise bad_request("'input' must not contain empty strings.", "input")
    encoding = body.get("encoding_format", "float") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)):
        raise bad_request("'dimensions' must be an integer.", "dimensions")
    return model, texts, encoding, dimensions


async def embeddings(request: Request) -> Response:
    from engine.rag.embeddings_api import accepted_names, embeddings_task, served_model_name, served_model_path
    from engine.server.app import read_json
    from engine.server.streaming import TERMINAL, Bridge, race_disconnect

    state = request.app.state.hearth
    model, texts, encoding, dimensions = parse_embeddings(await read_json(request, state.config.max_body_bytes))
    if model not in accepted_names():
        raise not_found(f"The embedding model '{model}' does not exist on this server; it embeds with "
                        f"'{served_model_name()}'.", "model", "model_not_found")
    bridge = Bridge(asyncio.get_running_loop())
    handle = state.scheduler.submit(embeddings_task, label="API embeddings", device=DEVICE, listener=bridge,
                                    texts=texts, model_path=served_model_path())

    async def outcome():
        while True:
            event, data = await bridge.next()
            if event in TERMINAL:
                return event, data

    gone, result = await race_disconnect(outcome(), request.receive)
    if gone:
        handle.cancel()
        return Response(status_code=499)
    event, data = result
    if event == "failed":
        raise from_engine_error(data)
    if event == "cancelled":
        raise APIError(503, "The request was cancelled: the server is stopping.", type="server_error",
                       headers={"Retry-After": "5"})
    if dimensions is not None and dimensions != data.vectors.shape[1]:
        raise unsupported("dimensions", f"this model's embeddings have {data.vectors.shape[1]} dimensions.")
    request.scope.setdefault("hearth.log", {}).update(model=data.model, prompt_tokens=data.prompt_tokens)
    return JSONResponse(data.to_openai(encoding))
