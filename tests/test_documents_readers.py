"""File readers: each format and each kind of bad input, on small files the tests create."""

from __future__ import annotations

import codecs

import pytest

from engine.documents import DEFAULT_MAX_BYTES, Document, Skipped, iter_documents, read_document
from engine.errors import DocumentError


def make_pdf(path, pages: list[str]) -> None:
    """A minimal valid PDF, one Helvetica text line per page ('' makes an image-less blank page)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET" if text else ""
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


def test_plain_text_markdown_and_code(tmp_path):
    (tmp_path / "a.txt").write_text("Hello\r\nworld\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nBody", encoding="utf-8")
    (tmp_path / "c.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    a, b, c = (read_document(tmp_path / n) for n in ("a.txt", "b.md", "c.py"))
    assert (a.text, a.kind, a.encoding, a.truncated) == ("Hello\nworld\n", "text", "utf-8", False)
    assert b.kind == "markdown" and b.text.startswith("# Title")
    assert (c.kind, c.language) == ("code", "python") and "    return 1" in c.text


def test_html_gives_text_not_tags(tmp_path):
    page = ("<html><head><title>t</title><script>var secret = 1;</script><style>p {}</style></head><body>"
            "<h2>Intro</h2><p>Fish &amp; chips\n   are   good.</p><ul><li>one</li><li>two</li></ul>"
            "<pre>def f():\n    pass</pre></body></html>")
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    doc = read_document(tmp_path / "p.html")
    assert doc.kind == "html"
    assert "<" not in doc.text and "secret" not in doc.text
    assert "## Intro" in doc.text and "Fish & chips are good." in doc.text
    assert "- one\n- two" in doc.text and "    pass" in doc.text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_unicode_encodings_detected(tmp_path, encoding):
    text = "Grüße aus Köln — ½ €\n" * 20
    (tmp_path / "u.txt").write_bytes(text.encode(encoding))
    doc = read_document(tmp_path / "u.txt")
    assert doc.text == text and doc.notice == ""


def test_cp1252_fallback_says_which(tmp_path):
    (tmp_path / "w.txt").write_bytes("Café “quoted” – naïve".encode("cp1252"))
    doc = read_document(tmp_path / "w.txt")
    assert doc.text == "Café “quoted” – naïve" and doc.encoding == "cp1252"
    assert "cp1252" in doc.notice


def test_html_meta_charset_is_used(tmp_path):
    page = '<html><head><meta charset="iso-8859-7"></head><body><p>Καλημέρα</p></body></html>'
    (tmp_path / "g.html").write_bytes(page.encode("iso-8859-7"))
    assert read_document(tmp_path / "g.html").text == "Καλημέρα"


@pytest.mark.parametrize("name,content,reason", [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"  \n\n ", "no text"),
    ("blob.dat", bytes(range(256)) * 10, "binary"),
    ("pic.png", b"\x89PNG\r\n\x1a\n....", "image"),
    ("old.doc", b"\xd0\xcf\x11\xe0", ".docx"),
])
def test_bad_files_are_refused_with_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DocumentError, match=reason) as info:
        read_document(tmp_path / name)
    assert info.value.path.endswith(name)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DocumentError, match="no such file"):
        read_document(tmp_path / "nope.txt")
    with pytest.raises(DocumentError, match="folder"):
        read_document(tmp_path)


def test_large_text_is_capped_with_notice(tmp_path):
    line = "ü" * 9 + "\n"  # 19 bytes: a cap can fall inside a character
    (tmp_path / "big.txt").write_text(line * 1000, encoding="utf-8")
    doc = read_document(tmp_path / "big.txt", max_bytes=5000)
    assert doc.truncated and "first 5 KB" in doc.notice
    assert doc.text.endswith("\n") and set(doc.text) <= {"ü", "\n"}
    assert len(doc.text.encode()) <= 5000


def test_large_pdf_is_refused_naming_the_limit(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["Hello"])
    with pytest.raises(DocumentError, match="limit"):
        read_document(tmp_path / "a.pdf", max_bytes=100)
    assert DEFAULT_MAX_BYTES >= 1024 * 1024


def test_pdf_text_and_blank_pages(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["Hello from page one", "", "Page three here"])
    doc = read_document(tmp_path / "a.pdf")
    assert doc.kind == "pdf"
    assert "Hello from page one" in doc.text and "Page three here" in doc.text
    assert "1 of 3 pages" in doc.notice


def test_scanned_pdf_without_text(tmp_path):
    make_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(DocumentError, match="no extractable text"):
        read_document(tmp_path / "scan.pdf")


def test_encrypted_and_damaged_pdf(tmp_path):
    from pypdf import PdfReader, PdfWriter

    make_pdf(tmp_path / "plain.pdf", ["Secret text"])
    writer = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    writer.encrypt("hunter2")
    with open(tmp_path / "locked.pdf", "wb") as f:
        writer.write(f)
    with pytest.raises(DocumentError, match="password"):
        read_document(tmp_path / "locked.pdf")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Cat")
    with pytest.raises(DocumentError, match="damaged"):
        read_document(tmp_path / "broken.pdf")


def test_docx_headings_lists_tables(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Report", level=1)
    d.add_paragraph("Opening paragraph.")
    d.add_paragraph("first point", style="List Bullet")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "a", "b"
    d.save(tmp_path / "r.docx")
    doc = read_document(tmp_path / "r.docx")
    assert doc.kind == "docx"
    assert doc.text == "# Report\n\nOpening paragraph.\n\n- first point\n\na | b"
    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DocumentError, match="damaged"):
        read_document(tmp_path / "bad.docx")


def test_iter_documents_expands_folders_and_skips(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("bee")
    (tmp_path / "a.txt").write_text("ay")
    (tmp_path / ".hidden.txt").write_text("secret")
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    (tmp_path / "__pycache__").mkdir()
    items = list(iter_documents([tmp_path, tmp_path / "missing.txt"]))
    docs = [i for i in items if isinstance(i, Document)]
    skipped = {i.path.rsplit("/", 1)[-1]: i.reason for i in items if isinstance(i, Skipped)}
    assert [d.text for d in docs] == ["ay", "bee"]
    assert skipped[".hidden.txt"] == "hidden"
    assert "image" in skipped["img.png"] and "no such file" in skipped["missing.txt"]
    assert "__pycache__" in skipped
    flat = list(iter_documents([tmp_path], recursive=False))
    assert not any(isinstance(i, Document) and i.text == "bee" for i in flat)
    assert any(isinstance(i, Skipped) and i.path.endswith("sub") for i in flat)


def test_undecodable_text_is_refused(tmp_path):
    # Bytes that are neither UTF-8 nor sensible cp1252/latin-1 text (C1 control characters throughout).
    (tmp_path / "x.txt").write_bytes(bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D, 0x41]) * 50)
    with pytest.raises(DocumentError, match="encoding"):
        read_document(tmp_path / "x.txt")
    assert codecs.lookup("cp1252")
