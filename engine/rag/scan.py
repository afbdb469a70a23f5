"""Compare what is on disk with what the collection knows: new, changed, gone, and vanished folders.

Only ``os.stat`` is used here (no file is read): a file whose size and mtime
are unchanged stays indexed; a changed one becomes pending (the indexer then
compares content hashes, so a file merely touched is not embedded again).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.documents import SKIPPED_FOLDERS
from engine.rag.db import DocsDatabase


@dataclass
class ScanReport:
    new: int = 0
    changed: int = 0
    deleted: int = 0
    vanished: list[str] = field(default_factory=list)  # sources (files or folders) no longer there

    def notice(self) -> str:
        if not self.vanished:
            return ""
        names = ", ".join(self.vanished[:3]) + (f" and {len(self.vanished) - 3} more" if len(self.vanished) > 3 else "")
        return (f"Not found: {names} (moved, renamed, or on a drive that is not connected). What was indexed from "
                "there is kept and still searchable; remove it from the collection, or reconnect it and re-scan.")


def walk_files(root: Path) -> list[Path]:
    """Every file under ``root`` (hidden files and build/cache folders left out), in a stable order."""
    if root.is_file():
        return [root]
    out: list[Path] = []
    for folder, dirs, files in os.walk(root, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS)
        out += [Path(folder) / f for f in sorted(files) if not f.startswith(".")]
    return out


def scan_collection(db: DocsDatabase, collection_id: int) -> ScanReport:
    """Bring the files table in step with the disk (one transaction per source)."""
    report = ScanReport()
    sources = db.query("SELECT * FROM sources WHERE collection_id = ? ORDER BY path", (collection_id,))
    seen: set[str] = set()
    for source in sources:
        root = Path(source["path"])
        if not root.exists():
            report.vanished.append(str(root))
            _mark_missing(db, source["id"], root)
            continue
        on_disk = {}
        for path in walk_files(root):
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat: the next scan sees it gone
            on_disk[str(path)] = (st.st_size, st.st_mtime)
        _sync_source(db, collection_id, source["id"], on_disk, seen, report)
    return report


def _mark_missing(db: DocsDatabase, source_id: int, root: Path) -> None:
    reason = f"{'the folder' if not root.suffix else 'the file'} {root} is not there any more"
    with db.write() as conn:
        conn.execute("UPDATE files SET status = 'missing', reason = ? WHERE source_id = ? AND status != 'excluded'",
                     (reason, source_id))


def _sync_source(db: DocsDatabase, collection_id: int, source_id: int, on_disk: dict[str, tuple[int, float]],
                 seen: set[str], report: ScanReport) -> None:
    known = {r["path"]: r for r in db.query("SELECT id, path, size, mtime, status, source_id FROM files "
                                            "WHERE collection_id = ?", (collection_id,))}
    with db.write() as conn:
        for path, (size, mtime) in on_disk.items():
            if path in seen:
                continue  # also under another source (a file dropped inside a dropped folder)
            seen.add(path)
            row = known.get(path)
            if row is None:
                conn.execute("INSERT INTO files (collection_id, source_id, path, size, mtime) VALUES (?, ?, ?, ?, ?)",
                             (collection_id, source_id, path, size, mtime))
                report.new += 1
            elif row["status"] == "excluded":
                continue
            elif row["size"] != size or row["mtime"] != mtime or row["status"] == "missing":
                conn.execute("UPDATE files SET size = ?, mtime = ?, status = 'pending', reason = '' WHERE id = ?",
                             (size, mtime, row["id"]))
                report.changed += 1
        for path, row in known.items():
            if row["source_id"] == source_id and path not in on_disk and row["status"] != "excluded":
                conn.execute("DELETE FROM files WHERE id = ?", (row["id"],))  # its chunks go with it (cascade)
                report.deleted += 1
        if report.deleted:
            conn.execute("UPDATE collections SET generation = generation + 1 WHERE id = ?", (collection_id,))
