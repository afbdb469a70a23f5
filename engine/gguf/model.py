"""What stands in ``LoadedModel.model`` for a GGUF run quantized: config, generation config, logits.

Chat, the text tools and everything that only needs logits work on it: a call
``model(input_ids)`` returns an object with ``.logits`` [B, S, V] computed by
the lean forward on the packed weights (with its own KV cache, so a running
chat's cache is untouched). Decoding goes through the GGUF decoder in
``lm.extras["decoder"]``; ``generate`` is here for callers of transformers'
``generate`` (``hf_decode``: the server's log-probabilities hook). What needs a real transformers module
(attention maps, hidden states, training) raises ``NeedsFullModelError``;
``engine.gguf.full_model`` builds one on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.errors import HearthError

LOGITS_CHUNK = 512  # positions per forward call


class NeedsFullModelError(HearthError):
    """The operation needs the full-precision transformers model, which a quantized GGUF run does not keep."""


@dataclass
class LogitsOutput:
    logits: torch.Tensor  # [B, S, V] fp32
    loss: torch.Tensor | None = None  # with labels: mean next-token cross-entropy, as transformers computes it


class GGUFCausalLM(torch.nn.Module):
    def __init__(self, config: Any, forward_factory: Any, parameter_count: int, path: str, quant: str,
                 device: Any = "cpu") -> None:
        super().__init__()
        from transformers import GenerationConfig

        self.config = config
        self.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                                  pad_token_id=config.pad_token_id)
        self._forward_factory = forward_factory  # () -> a LeanForward over the shared packed weights
        self.parameter_count = int(parameter_count)
        self.gguf_path, self.quant = path, quant
        self.main_input_name = "input_ids"
        # Empty, but on the model's device: code that asks ``next(model.parameters()).device`` gets an answer.
        self.device_anchor = torch.nn.Parameter(torch.empty(0, device=device), requires_grad=False)

    def num_parameters(self, *args, **kwargs) -> int:
        return self.parameter_count

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                _state: tuple | None = None, **kwargs) -> LogitsOutput:
        """Logits for every position of every row. Padding is not supported (rows run one by one).

        ``_state`` = (LeanForward, start): ``generate``'s incremental steps (last position's logits only),
        made through ``__call__`` so forward hooks see them as they would on a transformers model."""
        wants = [k for k in ("output_attentions", "output_hidden_states") if kwargs.get(k)]
        if wants:
            raise NeedsFullModelError(
                f"{wants[0].replace('_', ' ')} needs the full-precision model; this GGUF runs quantized "
                "(engine.gguf.full_model builds it).")
        if _state is not None:
            fwd, start = _state
            return LogitsOutput(logits=fwd.forward(input_ids[0].cpu(), start)[None, None])
        if attention_mask is not None and not bool(attention_mask.all()):
            raise NeedsFullModelError("padded batches are not supported by the quantized GGUF model")
        ids = input_ids if input_ids.dim() == 2 else input_ids[None]
        rows = []
        for row in ids:
            fwd = self._forward_factory()
            try:
                parts = [fwd.forward(row[i:i + LOGITS_CHUNK].cpu(), i, all_positions=True)
                         for i in range(0, row.shape[0], LOGITS_CHUNK)]
            finally:
                fwd.release()
            rows.append(torch.cat(parts))
        logits = torch.stack(rows).to(input_ids.device)
        labels = kwargs.get("labels")
        loss = None
        if labels is not None:  # perplexity of the quantized model itself; no gradients (inference mode)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                                     ignore_index=-100)
        return LogitsOutput(logits=logits, loss=loss)

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 generation_config: Any = None, streamer: Any = None, stopping_criteria: Any = None,
                 **kwargs) -> torch.Tensor:
        """transformers' ``generate`` for one row, enough for ``engine.generation.hf_decode``: the fast
        decoder's own loop is the usual route; this one serves callers that hook the forward."""
        from engine.fastpath.sampler import Sampler

        config = generation_config or self.generation_config
        sampling = _sampling_of(config)
        ids = input_ids[0].tolist()
        eos = config.eos_token_id if config.eos_token_id is not None else self.config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        fwd = self._forward_factory()
        fwd.reserve(len(ids) + sampling.max_new_tokens)
        out: list[int] = []
        try:
            if streamer is not None:
                streamer.put(input_ids[0].cpu())
            for start in range(0, len(ids) - 1, LOGITS_CHUNK):  # all but the last prompt token
                fwd.forward(torch.tensor(ids[start:min(len(ids) - 1, start + LOGITS_CHUNK)]), start, logits=False)
            logits = self(torch.tensor([ids[-1:]]), _state=(fwd, len(ids) - 1)).logits[0, -1]
            sampler = Sampler(sampling, logits.shape[-1], ids, logits.device)
            while True:
                token = sampler(logits)
                out.append(token)
                if streamer is not None:
                    streamer.put(torch.tensor([token]))
                done = token in eos or len(out) >= sampling.max_new_tokens
                if not done and stopping_criteria is not None:
                    done = bool(stopping_criteria(torch.tensor([ids + out]), None).any())
                if done:
                    break
                logits = self(torch.tensor([[token]]), _state=(fwd, len(ids) + len(out) - 1)).logits[0, -1]
        finally:
            fwd.release()
            if streamer is not None:
                streamer.end()
        return torch.tensor([ids + out], device=input_ids.device)


def _sampling_of(config: Any) -> Any:
    """A transformers GenerationConfig as Hearth's SamplingConfig (greedy unless do_sample)."""
    from engine.config import SamplingConfig

    sample = bool(getattr(config, "do_sample", False))
    return SamplingConfig(
        temperature=float(config.temperature or 1.0) if sample else 0.0,
        top_p=float(config.top_p or 1.0) if sample else 1.0, top_k=int(config.top_k or 0) if sample else 0,
        min_p=float(getattr(config, "min_p", None) or 0.0) if sample else 0.0,
        repetition_penalty=float(config.repetition_penalty or 1.0), max_new_tokens=int(config.max_new_tokens or 256))
