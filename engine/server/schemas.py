"""Requests of the OpenAI API as validated dataclasses.

``parse_chat(body)`` and ``parse_completion(body)`` take the decoded JSON and either
return a request or raise an :class:`APIError` (400) that names the offending field.
Fields the server does not implement (``tools``, ``response_format`` other than text,
``n > 1``, images, ``echo``...) are refused by name, never silently ignored; so is any
field it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import ChatMessage, SamplingConfig
from engine.errors import InvalidConfigError
from engine.server.errors import APIError, bad_request, unsupported

MAX_STOP = 4  # as OpenAI
MAX_TOP_LOGPROBS = 20

# Accepted because they change nothing here: who the user is, and OpenAI-side storage hints.
HARMLESS = {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}
REFUSED = {
    "tools": "tool calling is not available", "tool_choice": "tool calling is not available",
    "functions": "function calling is not available", "function_call": "function calling is not available",
    "parallel_tool_calls": "tool calling is not available", "audio": "audio output is not available",
    "modalities": "only text output is available", "prediction": "predicted outputs are not available",
    "web_search_options": "web search is not available", "reasoning_effort": "this is not a reasoning model",
    "best_of": "only one completion is generated per request",
}


@dataclass(frozen=True)
class Common:
    """Fields shared by chat and raw completions."""

    model: str
    sampling: SamplingConfig
    max_tokens: int | None  # None: whatever room the context leaves
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int


@dataclass(frozen=True)
class ChatRequest(Common):
    messages: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True)
class CompletionRequest(Common):
    prompt: str | tuple[int, ...] = ""
    suffix: str | None = None


CHAT_FIELDS = {"model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
               "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "stream", "stream_options", "n",
               "logit_bias", "response_format", "top_k", "min_p", "repetition_penalty"}
COMPLETION_FIELDS = {"model", "prompt", "suffix", "temperature", "top_p", "max_tokens", "stop", "seed",
                     "presence_penalty", "frequency_penalty", "logprobs", "stream", "stream_options", "n", "echo",
                     "logit_bias", "top_k", "min_p", "repetition_penalty"}


def parse_chat(body: Any) -> ChatRequest:
    body = _object(body)
    _refuse_unknown(body, CHAT_FIELDS)
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise unsupported("response_format", "only plain text answers are available (no JSON mode or schemas)")
    logprobs = _bool(body, "logprobs", False)
    top = _int(body, "top_logprobs", 0, low=0, high=MAX_TOP_LOGPROBS)
    if "top_logprobs" in body and body["top_logprobs"] is not None and not logprobs:
        raise bad_request("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs")
    max_tokens = _int(body, "max_completion_tokens", None, low=1)
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", None, low=1)
    common = _common(body, max_tokens)
    return ChatRequest(**common, logprobs=logprobs, top_logprobs=top, messages=_messages(body))


def parse_completion(body: Any) -> CompletionRequest:
    body = _object(body)
    _refuse_unknown(body, COMPLETION_FIELDS)
    if _bool(body, "echo", False):
        raise unsupported("echo", "the prompt is not echoed back")
    # Legacy completions: logprobs is an integer, how many alternatives to list (0..5).
    top = _int(body, "logprobs", None, low=0, high=5)
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise bad_request("'suffix' must be a string.", "suffix")
    max_tokens = _int(body, "max_tokens", 16, low=1)  # OpenAI's default for completions
    return CompletionRequest(**_common(body, max_tokens), logprobs=top is not None, top_logprobs=top or 0,
                             prompt=_prompt(body), suffix=suffix or None)


def _common(body: dict, max_tokens: int | None) -> dict:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string.", "model")
    n = _int(body, "n", 1, low=1)
    if n != 1:
        raise unsupported("n", "only one choice is generated per request (n must be 1)")
    for name in ("presence_penalty", "frequency_penalty"):
        value = _number(body, name, 0.0, low=-2.0, high=2.0)
        if value != 0.0:
            raise unsupported(name, "the model's sampler has no additive penalties; send 'repetition_penalty' "
                                    "(multiplicative, 1.0 = off, as in transformers and llama.cpp) instead")
    bias = body.get("logit_bias")
    if bias:
        raise unsupported("logit_bias", "token biases are not available")
    stream = _bool(body, "stream", False)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise bad_request("'stream_options' is only allowed when 'stream' is true.", "stream_options")
        if not isinstance(options, dict):
            raise bad_request("'stream_options' must be an object.", "stream_options")
        include_usage = _bool(options, "include_usage", False, prefix="stream_options.")
    try:
        sampling = SamplingConfig(
            temperature=_number(body, "temperature", 1.0, low=0.0, high=2.0),
            top_p=_number(body, "top_p", 1.0, low=0.0, high=1.0) or 1e-6,  # 0 means 'the top token only'
            top_k=_int(body, "top_k", 0, low=0), min_p=_number(body, "min_p", 0.0, low=0.0, high=0.999),
            repetition_penalty=_number(body, "repetition_penalty", 1.0, low=0.5, high=3.0),
            max_new_tokens=max_tokens or 1, seed=_int(body, "seed", None), stop=_stop(body),
            repetition_guard=False)  # an API answers with the model's raw output
    except InvalidConfigError as exc:  # the ranges above are stricter; kept as a safety net
        raise bad_request(str(exc)) from exc
    return dict(model=model, sampling=sampling, max_tokens=max_tokens, stream=stream, include_usage=include_usage)


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _refuse_unknown(body: dict, known: set[str]) -> None:
    for name, value in body.items():
        if name in known or name in HARMLESS:
            continue
        if name in REFUSED:
            if value is None or value == [] or value == {}:
                continue  # an explicit "none of this" is fine
            raise unsupported(name, REFUSED[name])
        raise bad_request(f"Unrecognized request argument supplied: '{name}'.", name, "unknown_parameter")


def _type_error(name: str, what: str) -> APIError:
    return bad_request(f"'{name}' must be {what}.", name, "invalid_type")


def _number(body: dict, name: str, default: float, *, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number")
    if not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low:g} and {high:g}, not {value}.", name, "invalid_value")
    return float(value)


def _int(body: dict, name: str, default: int | None, *, low: int | None = None, high: int | None = None):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise bad_request(f"'{name}' must be {bounds}, not {value}.", name, "invalid_value")
    return value


def _bool(body: dict, name: str, default: bool, prefix: str = "") -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(prefix + name, "true or false")
    return value


def _stop(body: dict) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _type_error("stop", "a string or a list of strings")
    if len(value) > MAX_STOP:
        raise bad_request(f"'stop' takes at most {MAX_STOP} strings, not {len(value)}.", "stop", "invalid_value")
    return tuple(s for s in value if s)


ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _messages(body: dict) -> tuple[ChatMessage, ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty list.", "messages")
    out = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object")
        role = message.get("role")
        if role not in ROLES:
            if role in ("tool", "function"):
                raise unsupported(f"{where}.role", "tool and function messages need tool calling")
            raise bad_request(f"'{where}.role' must be system, developer, user or assistant, not {role!r}.",
                              f"{where}.role", "invalid_value")
        if message.get("tool_calls") or message.get("function_call"):
            raise unsupported(f"{where}.tool_calls", "tool calling is not available")
        out.append(ChatMessage(ROLES[role], _content(message.get("content"), where)))
    return tuple(out)


def _content(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_error(f"{where}.content", "a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_audio", "file", "image"):
            raise unsupported(f"{where}.content[{j}]", f"{kind} parts: this model reads text only")
        else:
            raise bad_request(f"'{where}.content[{j}]' must be a text part.", f"{where}.content[{j}]", "invalid_type")
    return "".join(texts)


def _prompt(body: dict) -> str | tuple[int, ...]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt) and prompt:
            return tuple(prompt)  # one prompt given as token ids
        if len(prompt) == 1 and isinstance(prompt[0], str):
            return prompt[0]
        if len(prompt) == 1 and isinstance(prompt[0], list) and all(isinstance(p, int) for p in prompt[0]):
            return tuple(prompt[0])
        if len(prompt) > 1:
            raise unsupported("prompt", "one prompt per request (batches of prompts are not available)")
    raise bad_request("'prompt' is required: a string, or a list of token ids.", "prompt")
