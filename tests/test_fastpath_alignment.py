"""torch's int8 kernel reads weight and activation rows with aligned vector loads and checks neither.

Weights read back from the packed-weights cache (safetensors ``load_file``) used to start 8 bytes off a
16-byte boundary: the second load of a model folder then killed the process (SIGSEGV in
``torch._weight_int8pack_mm``) on any prompt whose chunk has 4 to 7 rows, e.g. a short completion prompt
through ``hearth-cli serve``. Each check runs in a child process, so a crash fails the test instead of
ending pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).parent


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code), *args],
                          cwd=str(TESTS.parent), capture_output=True, text=True, timeout=300)


def test_int8_linear_with_weights_and_inputs_off_alignment():
    child = run_child("""
        import torch
        from engine.fastpath.linear import Int8

        def off_by(t, nbytes):  # the same values, starting nbytes past a 64-byte boundary
            buf = torch.empty(t.numel() * t.element_size() + 128, dtype=torch.uint8)
            start = -buf.data_ptr() % 64 + nbytes
            view = buf[start:start + t.numel() * t.element_size()].view(t.dtype).view(t.shape)
            return view.copy_(t)

        torch.manual_seed(0)
        layer = Int8.quantize(torch.randn(64, 32))
        moved = Int8(off_by(layer.q, 8), layer.s)
        for rows in range(1, 8):
            x = torch.randn(rows, 32).to(torch.bfloat16)
            want = x.float() @ layer.dequantized().float().T
            got = moved(off_by(x, 16))
            # one row runs on Hearth's kernel (engine/fastpath/kernels): x rounded to int8 per block of 32
            atol = 2e-2 if rows > 1 else 0.03 * float(want.abs().max())
            assert torch.allclose(got.float(), want, rtol=2e-2, atol=atol), rows
        print("ok")
    """)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.strip() == "ok"


def test_int8_weights_read_from_the_disk_cache_decode_a_short_prompt(tiny_model_dir, data_dir):
    child = run_child("""
        import sys
        from engine import LoadConfig, load_model
        from engine.config import SamplingConfig
        from engine.fastpath import FastDecoder
        from engine.generation import generate_ids

        greedy = SamplingConfig(temperature=0.0, max_new_tokens=5, repetition_penalty=1.0, repetition_guard=False)
        lm = load_model(LoadConfig(path=sys.argv[1], device="cpu"))
        ids = lm.tokenizer("def add(a, b):")["input_ids"]  # 8 tokens: a 7-row prompt chunk
        replies = []
        for _ in range(2):  # packed and saved, then read back from the cache
            decoder = FastDecoder(lm, "int8")
            assert decoder.prepare(), decoder.reason
            lm.extras["decoder"] = decoder
            replies.append(generate_ids(lm, ids, greedy).token_ids)
            assert decoder.last_route == "fast int8", decoder.last_route
        print(len(ids), replies[0] == replies[1])
    """, str(tiny_model_dir))
    assert child.returncode == 0, child.stderr[-3000:]
    assert len(list((data_dir / "fastpath").glob("*.safetensors"))) == 1  # the second decoder had a cache to read
    assert child.stdout.split() == ["8", "True"]
