"""The lab's Transformer as a transformers model, so a lab folder loads like any other model.

A trained lab model is saved with ``save_pretrained``: ``config.json`` (``model_type: hearth_lab``),
``model.safetensors`` and the tokenizer files. Importing this module registers the type with
``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoModelForMaskedLM``, so ``engine.loader.load_model``
opens the folder for chat, the Notebook, and the lab's viewers. The wrapper adds no computation:
``self.lab`` is the plain :class:`~engine.lab.model.LabTransformer`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, GenerationMixin,
                          PreTrainedConfig, PreTrainedModel)
from transformers.modeling_outputs import CausalLMOutput, MaskedLMOutput

from engine.lab.attention import lab_attention_maps
from engine.lab.model import LabModelConfig, LabTransformer

MODEL_TYPE = "hearth_lab"


class HearthLabConfig(PreTrainedConfig):
    model_type = MODEL_TYPE
    # Generic code (the viewers, the loader) reads these standard names.
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "n_heads",
                     "num_hidden_layers": "n_layers", "intermediate_size": "d_ff"}

    def __init__(self, vocab_size: int = 256, d_model: int = 128, n_heads: int = 4, n_layers: int = 2,
                 d_ff: int = 512, max_position_embeddings: int = 128, dropout: float = 0.1,
                 objective: str = "clm", **kwargs) -> None:
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.d_ff = d_ff
        self.max_position_embeddings = max_position_embeddings  # the trained context
        self.dropout = dropout
        self.objective = objective
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    def lab_config(self) -> LabModelConfig:
        return LabModelConfig(vocab_size=self.vocab_size, d_model=self.d_model, n_heads=self.n_heads,
                              n_layers=self.n_layers, d_ff=self.d_ff, context=self.max_position_embeddings,
                              dropout=self.dropout, objective=self.objective)

    @classmethod
    def from_lab(cls, config: LabModelConfig, **kwargs) -> "HearthLabConfig":
        return cls(vocab_size=config.vocab_size, d_model=config.d_model, n_heads=config.n_heads,
                   n_layers=config.n_layers, d_ff=config.d_ff, max_position_embeddings=config.context,
                   dropout=config.dropout, objective=config.objective, **kwargs)


class _LabPreTrained(PreTrainedModel):
    config_class = HearthLabConfig
    base_model_prefix = "lab"
    main_input_name = "input_ids"

    def __init__(self, config: HearthLabConfig) -> None:
        super().__init__(config)
        self.lab = LabTransformer(config.lab_config())
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # LabTransformer initialises itself; loading overwrites every weight anyway

    def get_input_embeddings(self) -> nn.Module:
        return self.lab.embed

    def get_output_embeddings(self) -> nn.Module:
        return self.lab.decoder

    def _run(self, input_ids: torch.Tensor, output_attentions: bool):
        # Keep the last `context` tokens: the model has never seen longer windows.
        input_ids = input_ids[:, -self.config.max_position_embeddings:]
        if output_attentions:
            logits, maps = lab_attention_maps(self.lab, input_ids)
            return input_ids, logits, tuple(maps)
        return input_ids, self.lab(input_ids), None


class HearthLabForCausalLM(_LabPreTrained, GenerationMixin):
    """Next-token prediction: logits (B, T, V), where position t scores token t + 1."""

    def __init__(self, config: HearthLabConfig) -> None:
        if config.objective != "clm":
            raise ValueError("this lab model was trained for masked language modelling (fill in the blank), "
                             "so it cannot continue text. Open it in the Lab to fill in blanks.")
        super().__init__(config)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # no key/value cache: every step re-reads the (short) window

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, **kwargs) -> dict:
        return {"input_ids": input_ids}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_attentions: bool = False, **kwargs) -> CausalLMOutput:
        input_ids, logits, attentions = self._run(input_ids, output_attentions)
        loss = None
        if labels is not None:
            labels = labels[:, -logits.size(1):]
            # position t predicts token t + 1: drop the last prediction and the first label
            loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                               labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits, attentions=attentions)


class HearthLabForMaskedLM(_LabPreTrained):
    """Masked language modelling: logits (B, T, V) score the original token at every position."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_attentions: bool = False, **kwargs) -> MaskedLMOutput:
        input_ids, logits, attentions = self._run(input_ids, output_attentions)
        loss = None
        if labels is not None:  # -100 everywhere except the masked positions
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                               ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, attentions=attentions)


def model_for(config: LabModelConfig) -> _LabPreTrained:
    hf_config = HearthLabConfig.from_lab(config)
    return HearthLabForCausalLM(hf_config) if config.causal else HearthLabForMaskedLM(hf_config)


AutoConfig.register(MODEL_TYPE, HearthLabConfig, exist_ok=True)
AutoModelForCausalLM.register(HearthLabConfig, HearthLabForCausalLM, exist_ok=True)
AutoModelForMaskedLM.register(HearthLabConfig, HearthLabForMaskedLM, exist_ok=True)
