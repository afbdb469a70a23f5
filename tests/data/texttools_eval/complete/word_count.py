"""Count the words of a text file."""

import sys
from collections import Counter


def count_words(path):
    """Return a Counter of the lower-cased words in the file at ``path``."""
    with open(path, encoding="utf-8") as handle:
        <|cursor|>


if __name__ == "__main__":
    for word, n in count_words(sys.argv[1]).most_common(10):
        print(f"{n:6d} {word}")
