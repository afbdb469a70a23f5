"""``hearth-cli lab``: train a Transformer from scratch, generate from it, look inside any model.

    hearth-cli lab train FILES... --size tiny --objective clm --out DIR
    hearth-cli lab generate DIR "prefix"
    hearth-cli lab attention --model M "text" --layer L --head H --png OUT.png
    hearth-cli lab probs --model M "text"
    hearth-cli lab next --model M "prefix"
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli._common import add_sampling_options, cancel_on_interrupt, sampling_from, stream_to_stdout
from engine.cli.progress import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="the Transformer lab: train one from scratch, look inside any model")
    cmds = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab.set_defaults(handler=lambda args: lab.print_help() or 2)

    t = cmds.add_parser("train", help="train a small Transformer on your files")
    t.add_argument("files", nargs="*", help="text files or folders (resume: optional)")
    t.add_argument("--out", required=True, help="the folder the model is saved to")
    t.add_argument("--size", default="tiny", choices=("tiny", "small", "medium"))
    t.add_argument("--objective", default="clm", choices=("clm", "mlm"),
                   help="clm: predict the next token (generates text); mlm: fill in masked tokens")
    t.add_argument("--tokenizer", default="char", choices=("char", "bpe"))
    t.add_argument("--vocab-size", type=int, default=2000, help="byte-pair tokenizer's vocabulary")
    t.add_argument("--context", type=int, default=0, help="tokens per window (0: the size's default)")
    t.add_argument("--steps", type=int, default=0, help="training steps (0: the size's default)")
    t.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no limit)")
    t.add_argument("--batch-size", type=int, default=0)
    t.add_argument("--lr", type=float, default=0.0, help="peak learning rate (0: the size's default)")
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--patience", type=int, default=5, help="early stopping patience in evaluations (0: off)")
    t.add_argument("--prompt", default="", help="samples start with this text")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--overwrite", action="store_true", help="start over in an --out that holds a model")
    t.add_argument("--estimate", action="store_true", help="only print the size, memory and time estimate")
    t.add_argument("--device", default="auto")
    t.set_defaults(handler=run_train)

    g = cmds.add_parser("generate", help="continue a prefix with a lab model (masked models fill <mask>s)")
    g.add_argument("model", help="a lab model folder")
    g.add_argument("prefix", nargs="?", default="")
    add_sampling_options(g, max_new_tokens=200)
    g.set_defaults(handler=run_generate)

    a = cmds.add_parser("attention", help="attention weights of any model over a text")
    a.add_argument("text")
    a.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    a.add_argument("--layer", type=int, default=0)
    a.add_argument("--head", type=int, default=None, help="head number (default: the mean over heads)")
    a.add_argument("--png", default=None, help="save the heatmap as this PNG file")
    a.add_argument("--device", default="cpu")
    a.set_defaults(handler=run_attention)

    p = cmds.add_parser("probs", help="each token's probability under a model, and the perplexity")
    p.add_argument("text")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=run_probs)

    n = cmds.add_parser("next", help="the most likely next tokens after a prefix")
    n.add_argument("prefix")
    n.add_argument("--model", default=None)
    n.add_argument("-k", type=int, default=10)
    n.add_argument("--device", default="cpu")
    n.set_defaults(handler=run_next)


_progress = ProgressLine()


def _config(args):
    from engine.lab.config import LabTrainConfig

    return LabTrainConfig(files=tuple(args.files), out_dir=args.out, size=args.size, objective=args.objective,
                          tokenizer=args.tokenizer, vocab_size=args.vocab_size, context=args.context,
                          max_steps=args.steps, max_minutes=args.minutes, batch_size=args.batch_size,
                          learning_rate=args.lr, weight_decay=args.weight_decay, eval_every=args.eval_every,
                          patience=args.patience, sample_prompt=args.prompt, resume=args.resume,
                          overwrite=args.overwrite, device=args.device)


def run_train(args) -> int:
    from engine.lab.estimate import estimate
    from engine.lab.train import train_lab

    config = _config(args)
    if not config.files and not config.resume:
        print("hearth-cli: give the files to train on", file=sys.stderr)
        return 2
    est = estimate(config)
    print(f"{config.size}: {config.preset.describe()}. {est.describe()}.", file=sys.stderr)
    if args.estimate:
        return 0

    def on_text(text: str) -> None:
        print("\r\033[K" + text, end="", flush=True)

    result = train_lab(config, on_text=on_text, on_progress=_progress, cancel=cancel_on_interrupt())
    print(f"\r\033[K[{result.finish_reason}: {result.steps} steps in {result.elapsed_s:.0f} s, best validation "
          f"loss {result.best_val_loss:.3f}; saved in {result.out_dir}]", file=sys.stderr)
    if result.notice:
        print(f"[{result.notice}]", file=sys.stderr)
    return 0


def _load(path, device: str = "auto"):
    from engine.config import LoadConfig
    from engine.lab.loading import load_any
    from engine.loader import load_model

    if path is None:
        return load_model(LoadConfig(device=device), on_progress=_progress)
    return load_any(path, device=device)


def run_generate(args) -> int:
    from engine.generation import generate
    from engine.lab.inspect import fill_mask
    from engine.lab.loading import is_masked

    lm = _load(args.model)
    if is_masked(lm):
        text, options = fill_mask(lm, args.prefix)
        if not options:
            print("hearth-cli: this model fills in blanks: write <mask> where tokens are missing", file=sys.stderr)
            return 2
        print(text)
        for i, top in enumerate(options, 1):
            print(f"blank {i}: " + ", ".join(f"{t!r} {p:.0%}" for t, p in top), file=sys.stderr)
        return 0
    result = generate(lm, args.prefix, sampling_from(args), on_text=stream_to_stdout, cancel=cancel_on_interrupt())
    print()
    if result.notice:
        print(f"[{result.notice}]", file=sys.stderr)
    return 0


def run_attention(args) -> int:
    from engine.lab.inspect import attention_maps
    from engine.lab.png import heatmap_rgb, write_png

    lm = _load(args.model, args.device)
    maps = attention_maps(lm, args.text)
    if not 0 <= args.layer < maps.layers:
        print(f"hearth-cli: --layer must be between 0 and {maps.layers - 1}", file=sys.stderr)
        return 2
    if args.head is not None and not 0 <= args.head < maps.heads:
        print(f"hearth-cli: --head must be between 0 and {maps.heads - 1}", file=sys.stderr)
        return 2
    matrix = maps.map(args.layer, args.head)
    which = f"head {args.head}" if args.head is not None else f"mean of {maps.heads} heads"
    print(f"{lm.name}: layer {args.layer}, {which}; each token and the tokens it attends to most:")
    for i, token in enumerate(maps.tokens):
        top = matrix[i].argsort()[::-1][:3]
        print(f"{i:4d} {token!r:>16} -> " + ", ".join(f"{maps.tokens[j]!r} {matrix[i, j]:.2f}" for j in top))
    if maps.notice:
        print(f"[{maps.notice}]", file=sys.stderr)
    if args.png:
        write_png(args.png, heatmap_rgb(matrix))
        print(f"[heatmap saved to {args.png}: rows look at columns, token order as listed]", file=sys.stderr)
    return 0


def run_probs(args) -> int:
    from engine.lab.inspect import token_probabilities

    result = token_probabilities(_load(args.model, args.device), args.text)
    if args.json:
        print(json.dumps({"perplexity": result.perplexity, "tokens": [
            {"text": t.text, "prob": t.prob, "top": t.top} for t in result.tokens]}))
        return 0
    for t in result.tokens:
        if t.prob is None:
            continue
        alts = ", ".join(f"{a!r} {p:.0%}" for a, p in t.top[:3])
        print(f"{t.text!r:>18} {t.prob:7.2%}   top: {alts}")
    print(f"perplexity {result.perplexity:.2f} ({result.method})")
    if result.notice:
        print(f"[{result.notice}]", file=sys.stderr)
    return 0


def run_next(args) -> int:
    from engine.lab.inspect import next_tokens

    tokens, notice = next_tokens(_load(args.model, args.device), args.prefix, k=args.k)
    for t in tokens:
        print(f"{t.prob:7.2%}  {t.text!r}")
    if notice:
        print(f"[{notice}]", file=sys.stderr)
    return 0
