"""What stands in ``LoadedModel.model`` for a GGUF run quantized: config, generation config, logits.

Chat, the text tools and everything that only needs logits work on it: a call
``model(input_ids)`` returns an object with ``.logits`` [B, S, V] computed by
the lean forward on the packed weights (with its own KV cache, so a running
chat's cache is untouched). Decoding never comes here: the GGUF decoder in
``lm.extras["decoder"]`` does it. What needs a real transformers module
(attention maps, hidden states, training) raises ``NeedsFullModelError``;
``engine.gguf.full_model`` builds one on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.errors import GenerationError, HearthError

LOGITS_CHUNK = 512  # positions per forward call


class NeedsFullModelError(HearthError):
    """The operation needs the full-precision transformers model, which a quantized GGUF run does not keep."""


@dataclass
class LogitsOutput:
    logits: torch.Tensor  # [B, S, V] fp32


class GGUFCausalLM(torch.nn.Module):
    def __init__(self, config: Any, forward_factory: Any, parameter_count: int, path: str, quant: str) -> None:
        super().__init__()
        from transformers import GenerationConfig

        self.config = config
        self.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                                  pad_token_id=config.pad_token_id)
        self._forward_factory = forward_factory  # () -> a LeanForward over the shared packed weights
        self.parameter_count = int(parameter_count)
        self.gguf_path, self.quant = path, quant
        self.main_input_name = "input_ids"

    def num_parameters(self, *args, **kwargs) -> int:
        return self.parameter_count

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> LogitsOutput:
        """Logits for every position of every row. Padding is not supported (rows run one by one)."""
        wants = [k for k in ("output_attentions", "output_hidden_states", "labels") if kwargs.get(k)]
        if wants:
            raise NeedsFullModelError(
                f"{wants[0].replace('_', ' ')} needs the full-precision model; this GGUF runs quantized "
                "(build it with engine.gguf.full_model.build_full_model).")
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
        return LogitsOutput(logits=torch.stack(rows).to(input_ids.device))

    def generate(self, *args, **kwargs) -> Any:
        raise GenerationError("This GGUF model decodes only on Hearth's fast path, which is not available "
                              "for this request (see the status bar for why).")
