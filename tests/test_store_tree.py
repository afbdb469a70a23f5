"""The message tree: alternatives, branches from edits, the current leaf, delete and duplicate."""

from __future__ import annotations

import pytest

from engine.config import SamplingConfig
from engine.store import NotFoundError, Store, StoreError


@pytest.fixture
def store():
    with Store() as s:
        yield s


def contents(store, conversation_id):
    return [m.content for m in store.current_path(conversation_id)]


def test_database_lives_in_the_data_dir_in_wal_mode(store, data_dir):
    assert store.path == data_dir / "hearth.db"
    assert store.db.query_one("PRAGMA journal_mode")[0] == "wal"


def test_title_comes_from_the_first_user_message_and_can_be_renamed(store):
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "\n  How do I bake sourdough bread at home without a proper oven, "
                                       "using only a cast iron pot?\nThanks")
    title = store.conversation(conv.id).title
    assert title.startswith("How do I bake sourdough") and title.endswith("…") and len(title) <= 61
    store.add_message(conv.id, "user", "Another question")
    assert store.conversation(conv.id).title == title
    assert store.rename_conversation(conv.id, "  Bread  ").title == "Bread"
    assert store.rename_conversation(conv.id, "").title == title  # back to the automatic title


def test_regenerate_keeps_old_replies_as_alternatives(store):
    conv = store.create_conversation()
    user = store.add_message(conv.id, "user", "Hi")
    first = store.add_message(conv.id, "assistant", "Hello!", model="m", tok_s=12.5, finish_reason="eos",
                              sampling=SamplingConfig(temperature=0.3))
    second = store.add_message(conv.id, "assistant", "Hey there.", parent_id=user.id)
    third = store.add_message(conv.id, "assistant", "Good day.", parent_id=user.id)
    thread = store.current_path(conv.id)
    assert [m.content for m in thread] == ["Hi", "Good day."]
    assert thread[1].alternative == (3, 3)
    shown = store.step_alternative(third.id, -1)
    assert shown.id == second.id and shown.alternative == (2, 3)
    assert contents(store, conv.id) == ["Hi", "Hey there."]
    assert store.step_alternative(second.id, -5).id == first.id  # clamped at the first
    kept = store.message(first.id)
    assert (kept.model, kept.tok_s, kept.finish_reason, kept.sampling.temperature) == ("m", 12.5, "eos", 0.3)


def test_editing_an_earlier_message_branches_and_the_old_branch_can_be_returned_to(store):
    conv = store.create_conversation()
    u1 = store.add_message(conv.id, "user", "Question one")
    store.add_message(conv.id, "assistant", "Answer one")
    u2 = store.add_message(conv.id, "user", "Question two")
    store.add_message(conv.id, "assistant", "Answer two")
    edited = store.edit_message(u1.id, "Question one, rephrased")
    assert contents(store, conv.id) == ["Question one, rephrased"]
    assert edited.parent_id is None and edited.alternative == (2, 2)
    store.add_message(conv.id, "assistant", "Answer to the rephrased one")
    back = store.step_alternative(edited.id, -1)
    assert back.id == u1.id
    # Returning restores the whole old branch, down to where it was left.
    assert contents(store, conv.id) == ["Question one", "Answer one", "Question two", "Answer two"]
    # ... and the newer branch is remembered too.
    store.step_alternative(u1.id, +1)
    assert contents(store, conv.id) == ["Question one, rephrased", "Answer to the rephrased one"]
    assert store.message(u2.id).content == "Question two"


def test_alternative_memory_at_a_deep_fork(store):
    conv = store.create_conversation()
    u1 = store.add_message(conv.id, "user", "a")
    store.add_message(conv.id, "assistant", "b1")
    b2 = store.add_message(conv.id, "assistant", "b2", parent_id=u1.id)
    store.add_message(conv.id, "user", "c under b2")
    store.step_alternative(b2.id, -1)
    assert contents(store, conv.id) == ["a", "b1"]
    store.step_alternative(store.current_path(conv.id)[1].id, +1)
    assert contents(store, conv.id) == ["a", "b2", "c under b2"]


def test_show_message_jumps_to_a_message_on_another_branch(store):
    conv = store.create_conversation()
    u = store.add_message(conv.id, "user", "q")
    hidden = store.add_message(conv.id, "assistant", "hidden answer")
    store.add_message(conv.id, "user", "follow-up")
    store.add_message(conv.id, "assistant", "other answer", parent_id=u.id)
    assert hidden.id not in store.path_ids(conv.id)
    store.show_message(hidden.id)
    assert contents(store, conv.id) == ["q", "hidden answer", "follow-up"]


def test_delete_message_removes_what_followed_and_shows_a_neighbour(store):
    conv = store.create_conversation()
    u = store.add_message(conv.id, "user", "q")
    a1 = store.add_message(conv.id, "assistant", "a1")
    store.add_message(conv.id, "user", "more")
    a2 = store.add_message(conv.id, "assistant", "a2", parent_id=u.id)
    store.show_message(a1.id)
    store.delete_message(a1.id)
    assert contents(store, conv.id) == ["q", "a2"]
    assert store.search("more") == []  # the follow-up went with it, out of the index too
    store.delete_message(a2.id)
    assert contents(store, conv.id) == ["q"]
    with pytest.raises(NotFoundError):
        store.message(a1.id)


def test_delete_of_a_long_chain_does_not_recurse(store):
    conv = store.create_conversation()
    first = store.add_message(conv.id, "user", "start")
    for i in range(1500):  # deeper than SQLite's trigger recursion limit (1000)
        store.add_message(conv.id, "assistant" if i % 2 == 0 else "user", f"m{i}")
    assert len(store.path_ids(conv.id)) == 1501
    store.delete_message(first.id)
    assert store.path_ids(conv.id) == [] and store.conversation(conv.id).message_count == 0


def test_list_is_pinned_first_then_most_recent_and_filters_titles(store):
    a = store.create_conversation("Alpha 100%")
    b = store.create_conversation("Beta")
    c = store.create_conversation("Gamma")
    store.add_message(a.id, "user", "bump")  # a is now the most recent
    assert [x.id for x in store.list_conversations()] == [a.id, c.id, b.id]
    store.set_pinned(b.id, True)
    listed = store.list_conversations()
    assert [x.id for x in listed] == [b.id, a.id, c.id] and listed[0].pinned
    assert [x.id for x in store.list_conversations(filter_text="100%")] == [a.id]
    assert [x.id for x in store.list_conversations(filter_text="a_")] == []  # LIKE wildcards are literal


def test_delete_and_duplicate_conversation(store):
    conv = store.create_conversation("Original", system_prompt="Be brief.")
    u = store.add_message(conv.id, "user", "q")
    store.add_message(conv.id, "assistant", "a1")
    store.add_message(conv.id, "assistant", "a2", parent_id=u.id)
    copy = store.duplicate_conversation(conv.id)
    assert copy.title == "Original (copy)" and copy.system_prompt == "Be brief." and copy.message_count == 3
    assert contents(store, copy.id) == ["q", "a2"]
    assert store.current_path(copy.id)[1].alternative == (2, 2)
    store.delete_conversation(conv.id)
    with pytest.raises(NotFoundError):
        store.conversation(conv.id)
    assert contents(store, copy.id) == ["q", "a2"]  # the copy is independent
    assert [h.conversation_id for h in store.search("a1")] == [copy.id]


def test_bad_ids_and_roles_get_typed_errors(store):
    conv = store.create_conversation()
    other = store.create_conversation()
    m = store.add_message(other.id, "user", "x")
    with pytest.raises(NotFoundError, match="no message"):
        store.add_message(conv.id, "assistant", "y", parent_id=m.id)
    with pytest.raises(StoreError, match="role"):
        store.add_message(conv.id, "tool", "y")
    with pytest.raises(NotFoundError, match="no conversation 999"):
        store.conversation(999)


def test_thousands_of_messages_load_by_window(store):
    conv = store.create_conversation()
    rows = [("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(3000)]
    store.import_thread("Long", "", rows)
    conv = store.list_conversations()[0]
    ids = store.path_ids(conv.id)
    assert len(ids) == 3000
    window = store.messages(ids[-50:])  # what a lazy view fetches first: the newest 50
    assert [m.content for m in window] == [f"message {i}" for i in range(2950, 3000)]
