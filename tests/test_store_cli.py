"""``hearth-cli chats ...`` and ``hearth-cli chat --once`` storing its turn."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.store import Store


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_chat_once_stores_the_turn_and_chats_commands_see_it(capsys, tiny_model_dir):
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "6", "--seed", "1"]
    code, out, err = cli(capsys, "chat", "--once", "Hi there", *model)
    assert code == 0 and "[saved in conversation 1]" in err
    code, out, _ = cli(capsys, "chats", "list")
    assert code == 0 and len(out.strip().splitlines()) == 2 and "Hi there" in out  # header + one conversation
    code, out, _ = cli(capsys, "chats", "export", "1", "--format", "md")
    assert code == 0 and "Hi there" in out and "## Assistant" in out

    code, _, err = cli(capsys, "chat", "--once", "And again", "--conversation", "1", *model)
    assert code == 0 and "[saved in conversation 1]" in err
    with Store() as store:
        thread = store.current_path(1)
        assert [m.role for m in thread] == ["user", "assistant", "user", "assistant"]
        assert thread[1].model and store.conversation(1).model == thread[1].model  # the model is stored
        assert thread[3].finish_reason in ("eos", "length", "stop") and thread[3].sampling.max_new_tokens == 6
    code, _, err = cli(capsys, "chat", "--once", "x", "--conversation", "42", *model)
    assert code == 1 and "no conversation 42" in err


def test_chats_show_search_import_rename_delete(capsys, tmp_path):
    with Store() as store:
        conv = store.create_conversation(system_prompt="Be brief.")
        u = store.add_message(conv.id, "user", "What is a quokka?")
        store.add_message(conv.id, "assistant", "A small marsupial.", model="m", tok_s=9.5, finish_reason="eos")
        store.add_message(conv.id, "assistant", "A happy-looking wallaby.", parent_id=u.id, status="interrupted")
    code, out, _ = cli(capsys, "chats", "show", "1")
    assert code == 0 and "[system]\nBe brief." in out and "‹ 2/2 ›" in out and "INTERRUPTED" in out
    code, out, _ = cli(capsys, "chats", "search", "marsupial")
    assert code == 0 and "[marsupial]" in out
    assert cli(capsys, "chats", "search", "platypus")[0] == 1

    exported = tmp_path / "quokka.json"
    assert cli(capsys, "chats", "export", "1", "--format", "json", "-o", str(exported))[0] == 0
    assert json.loads(exported.read_text())["messages"][-1]["content"] == "A happy-looking wallaby."
    code, out, _ = cli(capsys, "chats", "import", str(exported))
    assert code == 0 and "Imported conversation 2" in out
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "robot", "content": "beep"}]')
    code, _, err = cli(capsys, "chats", "import", str(bad))
    assert code == 1 and "role 'robot'" in err

    assert cli(capsys, "chats", "rename", "2", "Quokkas")[0] == 0
    assert cli(capsys, "chats", "delete", "1", "--yes")[0] == 0
    code, out, _ = cli(capsys, "chats", "list")
    assert "Quokkas" in out and "quokka?" not in out


@pytest.mark.parametrize("argv", [["chats", "show", "9"], ["chats", "export", "9"]])
def test_unknown_ids_are_one_line_errors(capsys, argv):
    code, _, err = cli(capsys, *argv)
    assert code == 1 and err.startswith("hearth-cli: There is no conversation 9")


def test_terminal_chat_stores_every_turn_in_one_conversation(capsys, monkeypatch, tiny_model_dir):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("first question\nsecond question\n\n"))
    code, out, err = cli(capsys, "chat", "--model", str(tiny_model_dir), "--device", "cpu",
                         "--max-new-tokens", "4", "--seed", "1")
    assert code == 0
    with Store() as store:
        thread = store.current_path(1)
        assert [m.role for m in thread] == ["user", "assistant", "user", "assistant"]
        assert [thread[0].content, thread[2].content] == ["first question", "second question"]
