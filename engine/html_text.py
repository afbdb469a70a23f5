"""HTML -> readable text with the standard library's parser (no tags, no scripts or styles).

Whitespace inside text is collapsed as a browser would; block elements start a
new paragraph, ``<br>`` a new line, list items a "- " bullet, headings a "#".
``<pre>`` keeps its lines.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
BLOCKS = {"p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "blockquote", "table",
          "tr", "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form", "hr", "address", "details", "summary"}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, bool]] = []  # (text, inside <pre>)
        self.skip_depth = 0
        self.pre_depth = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title":
            self._in_title = True
        if tag in SKIP:
            self.skip_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
            self._add("\n\n")
        elif tag in HEADINGS:
            self._add("\n\n" + "#" * HEADINGS[tag] + " ")
        elif tag == "li":
            self._add("\n- ")
        elif tag == "br":
            self._add("\n")
        elif tag in ("td", "th"):
            self._add(" | ")
        elif tag in BLOCKS:
            self._add("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self._add("\n\n")
        elif tag in HEADINGS or tag in BLOCKS:
            self._add("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.skip_depth:
            return
        if self.pre_depth:
            self._add(data)
        else:
            self._add(re.sub(r"\s+", " ", data))

    def _add(self, text: str) -> None:
        self.parts.append((text, self.pre_depth > 0))

    def text(self) -> str:
        # Merge runs outside <pre>; there, spaces next to the line breaks we added are noise.
        # Inside <pre> (code), indentation is kept.
        runs: list[list] = []
        for text, pre in self.parts:
            if runs and runs[-1][1] == pre:
                runs[-1][0] += text
            else:
                runs.append([text, pre])
        out = "".join(t if pre else re.sub(r" *\n *", "\n", t) for t, pre in runs)
        out = re.sub(r"[ \t]+\n", "\n", out)
        out = re.sub(r"\n{3,}", "\n\n", out).strip("\n").strip(" ")
        if not out.strip() and self.title.strip():
            return self.title.strip()
        return out
