"""``hearth-cli bench-server`` runs end to end on the tiny model and reports no errors."""

from __future__ import annotations

import pytest

pytest.importorskip("openai")


def test_bench_server_prints_both_rows(tiny_model_dir, capsys):
    from engine.cli import main

    code = main(["bench-server", "--model", str(tiny_model_dir), "--device", "cpu", "--clients", "2",
                 "--requests", "2", "--max-tokens", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "one process, one at a time" in out and "server, 2 clients" in out
    served = next(line for line in out.splitlines() if "server, 2 clients" in line)
    assert served.rstrip(" |").endswith("0")  # no errors
    assert "server tok/s ÷ one-process tok/s" in out
