"""TextStream: prefix-difference decoding and stop strings split across tokens."""

from engine.streaming import TextStream


class CharTokenizer:
    """Each token id is one character; id 0 is an incomplete multi-byte character."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join("\ufffd" if i == 0 else chr(i) for i in ids)


def feed(stream, text):
    out = []
    for ch in text:
        out.append(stream.push([ord(ch)]))
    return out


def test_text_arrives_in_order_and_complete():
    stream = TextStream(CharTokenizer())
    chunks = feed(stream, "hello world")
    assert "".join(chunks) + stream.finish() == "hello world"


def test_stop_string_split_across_tokens_never_leaks():
    stream = TextStream(CharTokenizer(), stop=("<END>",))
    chunks = feed(stream, "abc<EN")
    assert "".join(chunks) == "abc"  # "<EN" is held back: it may be the start of the stop string
    assert stream.push([ord("D")]) == ""
    assert stream.push([ord(">")]) == ""
    assert stream.stopped_by == "<END>"
    assert stream.output == "abc"
    assert stream.push([ord("x")]) == ""  # nothing after a stop


def test_held_back_prefix_is_released_when_it_turns_out_not_to_be_a_stop():
    stream = TextStream(CharTokenizer(), stop=("<END>",))
    chunks = feed(stream, "a<EX")
    assert "".join(chunks) == "a<EX"
    chunks = feed(stream, "b<E")
    assert "".join(chunks) == "b"
    assert stream.finish() == "<E"  # generation ended: the held-back text was real text


def test_incomplete_character_is_held_back():
    stream = TextStream(CharTokenizer())
    assert stream.push([ord("a"), 0]) == "a"
    assert stream.finish() == ""
    assert stream.output == "a"


def test_earliest_of_several_stop_strings_wins():
    stream = TextStream(CharTokenizer(), stop=("Y", "XY"))
    feed(stream, "abXY")
    assert stream.output == "ab"  # "XY" starts before "Y"
