"""Samples shown at each evaluation: a continuation (causal) or filled-in blanks (masked)."""

from __future__ import annotations

import torch


@torch.no_grad()
def sample_text(model, tokenizer, val_ids: torch.Tensor, config, device) -> str:
    model.eval()
    context = config.effective_context
    if config.objective == "clm":
        return continue_text(model, tokenizer, config.sample_prompt, val_ids, context, config.sample_tokens, device)
    window = val_ids[: min(context, 64)]
    return fill_in_example(model, tokenizer, window, config.mask_fraction, device)


def continue_text(model, tokenizer, prompt: str, val_ids: torch.Tensor, context: int, max_new: int,
                  device, temperature: float = 0.8, top_k: int = 40) -> str:
    if prompt:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(context // 2):]
    else:
        ids = val_ids[: min(16, context // 4)].tolist()  # the start of the held-out text
    if not ids:
        ids = [tokenizer.eos_token_id]
    inputs = torch.tensor([ids], device=device)
    out = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), do_sample=True,
                         temperature=temperature, top_k=top_k, max_new_tokens=max(1, min(max_new, context - len(ids))),
                         pad_token_id=tokenizer.eos_token_id, eos_token_id=None)
    return tokenizer.decode(out[0], skip_special_tokens=False)


def fill_in_example(model, tokenizer, window: torch.Tensor, fraction: float, device) -> str:
    """One line with blanks as "_" and one with the model's guesses in [brackets]."""
    gen = torch.Generator().manual_seed(7)
    chosen = torch.rand(window.shape, generator=gen) < fraction  # (T,)
    chosen &= window != tokenizer.eos_token_id
    if not chosen.any():
        chosen[len(window) // 2] = True
    inputs = window.clone()
    inputs[chosen] = tokenizer.mask_token_id
    logits = model(input_ids=inputs.unsqueeze(0).to(device)).logits[0]  # (T, V)
    guesses = logits.argmax(-1).cpu()
    tokens = [tokenizer.decode([t]) for t in window.tolist()]
    blanks = "".join("_" * max(1, len(tok)) if c else tok for tok, c in zip(tokens, chosen.tolist()))
    filled = "".join(f"[{tokenizer.decode([g])}]" if c else tok
                     for tok, g, c in zip(tokens, guesses.tolist(), chosen.tolist()))
    return f"blanks: {blanks}\nguess:  {filled}"
