"""Full-text search, and export to Markdown / OpenAI JSON with the import round trip."""

from __future__ import annotations

import json

import pytest

from engine.store import ImportFormatError, Store
from engine.store import exchange
from engine.store.search import fts_query


@pytest.fixture
def store():
    with Store() as s:
        yield s


def test_search_finds_words_prefixes_and_accents_and_ignores_syntax(store):
    conv = store.create_conversation("Travel")
    a = store.add_message(conv.id, "user", "Where is the best café in Zürich?")
    b = store.add_message(conv.id, "assistant", "Try the one near the lake; its croissants are great.")
    assert [h.message_id for h in store.search("cafe zurich")] == [a.id]
    assert [h.message_id for h in store.search("croiss")] == [b.id]  # the last word is a prefix
    hit = store.search("croissants")[0]
    assert hit.conversation_title == "Travel" and "[croissants]" in hit.snippet and hit.role == "assistant"
    assert store.search('"unbalanced AND (NEAR') == []  # no FTS syntax error
    assert store.search("   ...  ") == []
    assert fts_query('say "hi"') == '"say" "hi"*'


def test_search_follows_edits_and_deletes(store):
    conv = store.create_conversation()
    m = store.add_message(conv.id, "assistant", "first draft")
    store.update_message(m.id, content="final wording")
    assert store.search("draft") == [] and [h.message_id for h in store.search("wording")] == [m.id]
    store.delete_conversation(conv.id)
    assert store.search("wording") == []


def test_markdown_export_holds_the_current_thread(store):
    conv = store.create_conversation(system_prompt="Be kind.")
    u = store.add_message(conv.id, "user", "Hi there")
    store.add_message(conv.id, "assistant", "Old reply")
    store.add_message(conv.id, "assistant", "```python\nprint('hi')\n```", parent_id=u.id, model="SmolLM2")
    text = exchange.to_markdown(store, conv.id)
    assert text.startswith("# Hi there\n")
    assert "## System\n\nBe kind." in text and "## User\n\nHi there" in text
    assert "## Assistant (SmolLM2, alternative 2 of 2)" in text and "print('hi')" in text
    assert "Old reply" not in text


def test_json_export_import_round_trip(store):
    conv = store.create_conversation(system_prompt="You are terse.")
    store.add_message(conv.id, "user", "Ünïcode question 🙂")
    store.add_message(conv.id, "assistant", "Answer\nwith lines")
    store.add_message(conv.id, "user", "Follow-up")
    data = json.loads(exchange.to_json(store, conv.id))
    assert data["messages"][0] == {"role": "system", "content": "You are terse."}
    assert [m["role"] for m in data["messages"]] == ["system", "user", "assistant", "user"]
    imported = exchange.import_json(store, json.dumps(data))
    assert imported.id != conv.id and imported.system_prompt == "You are terse."
    assert imported.title == store.conversation(conv.id).title
    assert json.loads(exchange.to_json(store, imported.id))["messages"] == data["messages"]


def test_import_accepts_a_bare_list_and_openai_content_parts(store, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([
        {"role": "developer", "content": "Speak French."},
        {"role": "user", "content": [{"type": "text", "text": "Bonjour"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": "Salut !"},
    ]), encoding="utf-8")
    conv = exchange.import_file(store, path)
    assert conv.system_prompt == "Speak French." and conv.title == "Bonjour"
    assert [(m.role, m.content) for m in store.current_path(conv.id)] == [("user", "Bonjour"),
                                                                          ("assistant", "Salut !")]


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON (line 1"),
    ('{"messages": [{"role": "tool", "content": "x"}]}', "message 1 has the role 'tool'"),
    ('[{"role": "user", "content": "ok"}, {"role": "wizard", "content": "x"}]', "message 2 has the role 'wizard'"),
    ('{"messages": []}', "empty"),
    ('{"foo": 1}', "holds no conversation"),
    ('[{"role": "user", "content": 5}]', "content is not text"),
    ('["hello"]', "not an object"),
])
def test_bad_imports_get_clear_errors_and_add_nothing(store, text, message):
    before = len(store.list_conversations())
    with pytest.raises(ImportFormatError, match=message.replace("(", r"\(")):
        exchange.import_json(store, text, source="chat.json")
    assert len(store.list_conversations()) == before


def test_import_of_a_missing_or_binary_file(store, tmp_path):
    with pytest.raises(ImportFormatError, match="Cannot read"):
        exchange.import_file(store, tmp_path / "nope.json")
    binary = tmp_path / "x.json"
    binary.write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        exchange.import_file(store, binary)
