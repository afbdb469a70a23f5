"""Fine-tuning data: every file format and every kind of bad input, on small files made here."""

from __future__ import annotations

import json

import pytest

from engine.finetune.config import DataConfig
from engine.finetune.data import IGNORE, build_dataset, render_masked
from engine.finetune.errors import DatasetError

PARAGRAPH = "The sea is wide and the waves are high. Ships sail over the sea at night.\n"


@pytest.fixture(scope="module")
def tok():
    from tiny_model import make_tokenizer

    return make_tokenizer()


def build(tok, *paths, **kw):
    kw.setdefault("seq_len", 32)
    return build_dataset(DataConfig(paths=tuple(str(p) for p in paths), **kw), tok)


def supervised(tok, item) -> str:
    """The text the loss is computed on."""
    return tok.decode([i for i, l in zip(item["input_ids"].tolist(), item["labels"].tolist()) if l != IGNORE])


def test_text_markdown_code_pdf_docx_are_packed(tok, tmp_path):
    import docx
    from test_documents_readers import make_pdf

    (tmp_path / "a.txt").write_text(PARAGRAPH * 20, encoding="utf-8")
    (tmp_path / "b.md").write_text("# Notes\n\n" + PARAGRAPH * 5, encoding="utf-8")
    (tmp_path / "c.py").write_text("def add(a, b):\n    return a + b\n" * 5, encoding="utf-8")
    make_pdf(tmp_path / "d.pdf", ["Hello from a PDF page"])
    document = docx.Document()
    document.add_paragraph("Hello from a Word document")
    document.save(tmp_path / "e.docx")
    built = build(tok, tmp_path, val_fraction=0.0)
    sources = {row.source.rsplit("/", 1)[-1] for row in built.rows}
    assert sources == {"a.txt", "b.md", "c.py", "d.pdf", "e.docx"}
    assert {row.kind for row in built.rows} == {"text"}
    item = built.train[0]
    assert len(item["input_ids"]) == 32 and item["labels"].tolist() == item["input_ids"].tolist()
    assert built.stats["train_tokens"] == sum(r.tokens for r in built.rows) > 32 * len(built.train)
    assert not built.skipped


def test_chat_jsonl_trains_on_assistant_turns_only(tok, tmp_path):
    convo = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
                          {"role": "assistant", "content": "Hi there"}, {"role": "user", "content": "Bye"},
                          {"role": "assistant", "content": "See you"}]}
    (tmp_path / "chat.jsonl").write_text(json.dumps(convo) + "\n", encoding="utf-8")
    built = build(tok, tmp_path / "chat.jsonl", seq_len=128, val_fraction=0)
    assert built.rows[0].kind == "chat"
    assert supervised(tok, built.train[0]) == "Hi there<|im_end|>\nSee you<|im_end|>\n"
    assert "Hello" in tok.decode(built.train[0]["input_ids"].tolist())


def test_prompt_completion_and_input_output_mask_the_input(tok, tmp_path):
    rows = [{"prompt": "What is 2+2?", "completion": "4"}, {"input": "Say hi", "output": "hi"},
            {"instruction": "Translate", "input": "bonjour", "output": "hello"}]
    (tmp_path / "pairs.json").write_text(json.dumps(rows), encoding="utf-8")
    built = build(tok, tmp_path / "pairs.json", seq_len=256, val_fraction=0)
    assert [r.kind for r in built.rows] == ["pair"] * 3
    (row,) = [built.train[i] for i in range(len(built.train))]  # packed into one row, positions restart
    assert [t.split("<")[0] for t in supervised(tok, row).split("<|im_end|>\n")[:3]] == ["4", "hi", "hello"]
    assert "bonjour" in tok.decode(row["input_ids"].tolist())
    starts = (row["position_ids"] == 0).nonzero().flatten().tolist()
    assert len(starts) == 3 and starts[0] == 0 and all(row["labels"][s] == IGNORE for s in starts)


def test_packed_examples_train_as_if_alone(tiny_model_dir, tok, tmp_path):
    """Packed examples (position_ids restart, no attention mask) get the logits each gets alone."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine.finetune.data import Collator

    rows = [{"prompt": f"Question {i}?", "completion": f"Answer number {i}."} for i in range(4)]
    (tmp_path / "p.json").write_text(json.dumps(rows), encoding="utf-8")
    built = build(tok, tmp_path / "p.json", seq_len=256, val_fraction=0)
    assert len(built.train) == 1
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    model.config.use_cache = False  # as in training: with a cache transformers does not look for packing
    packed = Collator(tok.pad_token_id)([built.train[0]])
    assert "attention_mask" not in packed
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits[0]
        starts = (packed["position_ids"][0] == 0).nonzero().flatten().tolist() + [packed["input_ids"].shape[1]]
        assert len(starts) == 5
        for a, b in zip(starts, starts[1:]):
            alone = model(input_ids=packed["input_ids"][:, a:b]).logits[0]
            assert torch.allclose(alone, logits[a:b], atol=1e-4)


def test_text_records_and_csv(tok, tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": PARAGRAPH * 3}) + "\n", encoding="utf-8")
    (tmp_path / "headed.csv").write_text("question,answer\nWho?,Me\nWhat?,That\n", encoding="utf-8")
    (tmp_path / "bare.csv").write_text("one,uno\ntwo,dos\n", encoding="utf-8")
    (tmp_path / "wide.csv").write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    built = build(tok, tmp_path, seq_len=64, val_fraction=0)
    by_source = {r.source.rsplit("/", 1)[-1]: r for r in built.rows}
    assert by_source["t.jsonl:1"].kind == "text"
    assert by_source["headed.csv:2"].text == "Who? → Me" and "headed.csv:1" not in by_source
    assert by_source["bare.csv:1"].text == "one → uno"
    assert [s.reason for s in built.skipped if s.path.endswith("wide.csv")] == [
        "expected two columns (input, output), found 3"]


def test_malformed_jsonl_lines_are_skipped_with_numbers(tok, tmp_path):
    good = json.dumps({"prompt": "a", "completion": "b"})
    lines = [good, "{not json", json.dumps({"unknown": 1}), good.replace('"b"', '"c"'), "[1, 2"]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    built = build(tok, tmp_path / "d.jsonl", val_fraction=0)
    assert len(built.rows) == 2
    (skipped,) = built.skipped
    assert skipped.reason.startswith("3 lines skipped: 2 (not valid JSON), 3 (no messages")
    assert "5 (not valid JSON)" in skipped.reason


def test_empty_folder_and_only_binary_files(tok, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="No files found in .*empty"):
        build(tok, empty)
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "a.dat").write_bytes(bytes(range(256)) * 10)
    (binary / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(DatasetError, match="None of the 2 files could be used.*binary"):
        build(tok, binary)
    with pytest.raises(DatasetError, match="No files chosen"):
        build(tok)


def test_large_files_are_never_cut(tok, tmp_path):
    (tmp_path / "big.txt").write_text(PARAGRAPH * 2000, encoding="utf-8")  # ~150 kB, over the 20 kB limit
    (tmp_path / "big.jsonl").write_text((json.dumps({"text": PARAGRAPH}) + "\n") * 2000, encoding="utf-8")
    (tmp_path / "big.json").write_text(json.dumps([{"text": PARAGRAPH}] * 400), encoding="utf-8")
    built = build(tok, tmp_path, max_file_mb=0.02, dedupe=False, val_fraction=0)
    whole = len(tok(PARAGRAPH * 2000, add_special_tokens=False)["input_ids"]) + 1
    by_source = {r.source.rsplit("/", 1)[-1]: r for r in built.rows}
    assert abs(by_source["big.txt"].tokens - whole) < 0.01 * whole  # chunked tokenizing may differ by a few
    assert sum(1 for r in built.rows if ".jsonl:" in r.source) == 2000
    (refused,) = built.skipped  # a whole-document .json over the limit is refused, with the reason
    assert refused.path.endswith("big.json") and "JSON Lines" in refused.reason


def test_text_that_is_not_utf8_is_read_with_a_notice(tok, tmp_path):
    (tmp_path / "latin.txt").write_bytes(("Café crème, déjà vu. " * 20).encode("cp1252"))
    (tmp_path / "latin.jsonl").write_bytes((json.dumps({"text": "naïve"}, ensure_ascii=False) + "\n")
                                            .encode("cp1252"))
    built = build(tok, tmp_path, val_fraction=0)
    assert any("latin.txt" in n and "cp1252" in n for n in built.notices)
    assert "Café" in next(r.text for r in built.rows if r.source.endswith("latin.txt"))
    assert any(r.text == "naïve" for r in built.rows)


def test_duplicates_removed_and_validation_split_by_file(tok, tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"File {i}. " + PARAGRAPH * 4, encoding="utf-8")
    (tmp_path / "copy.txt").write_text("File 0. " + PARAGRAPH * 4, encoding="utf-8")
    built = build(tok, tmp_path, val_fraction=0.2)
    assert built.stats["duplicates"] == 1
    val_files = {r.source for r in built.rows if r.split == "validation"}
    train_files = {r.source for r in built.rows if r.split == "train"}
    assert val_files and not val_files & train_files
    assert built.val is not None and len(built.val) >= 1


def test_single_file_is_split_inside(tok, tmp_path):
    (tmp_path / "one.txt").write_text(PARAGRAPH * 30, encoding="utf-8")
    built = build(tok, tmp_path / "one.txt", val_fraction=0.1)
    assert [r.split for r in built.rows] == ["train", "validation"]
    assert built.rows[1].source.endswith("(end)") and len(built.val) >= 1


def test_too_little_data_and_sequence_over_context(tok, tmp_path):
    (tmp_path / "tiny.txt").write_text("Hi.", encoding="utf-8")
    with pytest.raises(DatasetError, match="too little text"):
        build(tok, tmp_path / "tiny.txt", seq_len=32)
    (tmp_path / "ok.txt").write_text(PARAGRAPH, encoding="utf-8")
    with pytest.raises(DatasetError, match="longer than the model's context \\(256"):
        build_dataset(DataConfig(paths=(str(tmp_path / "ok.txt"),), seq_len=512), tok, max_context=256)


def test_small_dataset_has_no_validation_and_says_so(tok, tmp_path):
    (tmp_path / "few.txt").write_text(PARAGRAPH, encoding="utf-8")
    built = build(tok, tmp_path / "few.txt", seq_len=16)
    assert built.val is None and any("no validation" in n for n in built.notices)


def test_random_offset_moves_block_boundaries(tok, tmp_path):
    (tmp_path / "a.txt").write_text(PARAGRAPH * 10 + "End.", encoding="utf-8")
    built = build(tok, tmp_path / "a.txt", val_fraction=0, seq_len=50)
    first = built.train[0]["input_ids"].tolist()
    offsets = set()
    for epoch in range(1, 6):
        built.train.set_epoch(epoch)
        offsets.add(built.train.offset)
    assert offsets != {0}
    built.train.set_epoch(0)
    assert built.train[0]["input_ids"].tolist() == first


def test_render_masked_matches_the_template(tok):
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    ids, labels = render_masked(tok, messages)
    assert tok.decode(ids) == tok.apply_chat_template(messages, tokenize=False)
    assert len(ids) == len(labels) and labels[0] == IGNORE
