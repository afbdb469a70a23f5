"""Open a GGUF file in place: memory-mapped, checked, with one clear sentence for every bad file.

``GGUFReader`` (the ``gguf`` package) parses the header and maps the tensor
data; nothing is copied until a tensor is repacked. Two things are added here:

- the reader's map is read through a plain ndarray view, because slicing a
  ``numpy.memmap`` subclass costs a Python-level ``__array_finalize__`` per
  slice, and a 50 000-token vocabulary is ~250 000 slices (1 s instead of 5 s);
- ``release(tensor)`` tells the kernel a repacked tensor's pages may leave this
  process (they stay in the page cache), so resident memory while loading is
  the packed weights plus one tensor of the file, not the packed weights plus
  the whole file.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BadModelFileError

MISSING = object()


def _reader_class():
    from gguf import GGUFReader

    from gguf import GGUFValueType

    class MappedReader(GGUFReader):
        """GGUFReader whose ``data`` is a plain ndarray view of the memmap (same pages, cheap slices), and
        whose metadata arrays are compact: one array for an array of numbers, and for an array of strings
        only where it lies in the file (``_Strings``), decoded when it is read, where the stock reader makes
        one or two numpy views per element (for a 49 152-token vocabulary that was 77 MB of resident memory
        while loading). Not even one small ``bytes`` per string: 98 000 of them (6 MB) lived from the parse
        until the metadata was dropped, and the heap pages they shared with objects that stay were never
        given back (bench/README.md, "Against the bench's bound")."""

        @property
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, value: np.memmap) -> None:
            self.mapping = value
            self._plain = value.view(np.ndarray)

        def _get_field_parts(self, orig_offs: int, raw_type: int):
            if raw_type != GGUFValueType.ARRAY or self.byte_order != "I":
                return super()._get_field_parts(orig_offs, raw_type)
            raw_itype = self._get(orig_offs, np.uint32)
            alen = self._get(orig_offs + 4, np.uint64)
            itype, count, offs = int(raw_itype[0]), int(alen[0]), orig_offs + 12
            if itype == GGUFValueType.STRING:
                strings = _Strings(self._plain, offs, count)
                return (strings.end - orig_offs, [raw_itype, alen, strings], [2],
                        [GGUFValueType.ARRAY, GGUFValueType.STRING])
            nptype = self.gguf_scalar_to_np.get(GGUFValueType(itype))
            if nptype is None:  # arrays of arrays: the stock way
                return super()._get_field_parts(orig_offs, raw_type)
            values = self._get(offs, nptype, count)
            return (12 + int(values.nbytes), [raw_itype, alen, values], [2],
                    [GGUFValueType.ARRAY, GGUFValueType(itype)])

    return MappedReader


class _Strings:
    """A metadata array of ``count`` strings (each a little-endian u64 length, then UTF-8 bytes) at ``start``
    in the file's map; ``end`` is where it stops. Python strings are made only by ``strings()``."""

    def __init__(self, data: np.ndarray, start: int, count: int) -> None:
        self.data, self.start, self.count = data, start, count
        offs, size = start, len(data)
        with memoryview(data) as view:
            for _ in range(count):
                offs += 8 + int.from_bytes(view[offs:offs + 8], "little")
                if offs > size:  # also ends a corrupt count's loop at once
                    raise ValueError(f"a metadata array of strings reaches byte {offs:,}, past the end of the file")
        self.end = offs

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    def strings(self) -> list[str]:
        out, offs = [], self.start
        with memoryview(self.data) as view:
            for _ in range(self.count):
                length = int.from_bytes(view[offs:offs + 8], "little")
                out.append(str(view[offs + 8:offs + 8 + length], "utf-8"))
                offs += 8 + length
        return out


@dataclass
class GGUFFile:
    path: Path
    reader: Any  # MappedReader
    size: int  # bytes on disk
    tensors: dict[str, Any] = field(default_factory=dict)  # name -> gguf ReaderTensor

    def value(self, key: str, default: Any = MISSING) -> Any:
        """A metadata value (str, number, or list); ``default`` or BadModelFileError when absent."""
        f = self.reader.fields.get(key)
        if f is None:
            if default is MISSING:
                raise BadModelFileError(self.path, f"its metadata has no {key!r}, which this model needs.")
            return default
        try:
            part = f.parts[f.data[0]] if f.data else None
            return part.strings() if isinstance(part, _Strings) else f.contents()
        except Exception as exc:  # a field whose declared type does not match its bytes
            raise BadModelFileError(self.path, f"its metadata value {key!r} is corrupt ({exc}).") from exc

    def has(self, key: str) -> bool:
        return key in self.reader.fields

    def tensor(self, name: str, required: bool = True) -> Any:
        t = self.tensors.get(name)
        if t is None and required:
            raise BadModelFileError(self.path, f"the tensor {name!r} is missing.")
        return t

    def release(self, tensor: Any, rows: tuple[int, int] | None = None) -> None:
        """Drop a tensor's file pages (or those of its ``rows`` = (start, stop)) from this process's resident
        set; they stay cached by the OS."""
        mapping = getattr(self.reader.mapping, "_mmap", None)
        if mapping is None or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = int(tensor.data_offset)
        end = start + int(tensor.n_bytes)
        if rows is not None:
            row_bytes = int(tensor.n_bytes) // max(1, int(tensor.data.shape[0]))
            start, end = start + rows[0] * row_bytes, start + rows[1] * row_bytes
        page = mmap.PAGESIZE
        first, last = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
        if last > first:
            try:
                mapping.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                pass

    def release_all(self) -> None:
        """Drop every tensor page from the resident set: reading one tensor also maps its neighbours' nearby
        pages (the kernel's fault-around), some of them already repacked and released (26 MB of the default
        model's 94 MB stayed mapped without this)."""
        mapping = getattr(self.reader.mapping, "_mmap", None)
        start = -(-int(self.reader.data_offset) // mmap.PAGESIZE) * mmap.PAGESIZE
        if mapping is not None and hasattr(mmap, "MADV_DONTNEED") and self.size > start:
            try:
                mapping.madvise(mmap.MADV_DONTNEED, start, self.size - start)
            except (OSError, ValueError):
                pass

    def drop_metadata(self) -> None:
        """Free the parsed metadata (a large vocabulary is tens of MB of small arrays) once it has been read."""
        self.reader.fields.clear()

    def close(self) -> None:
        """Unmap the file. Tensors read from it must not be used afterwards."""
        mapping = getattr(self.reader.mapping, "_mmap", None)
        self.tensors.clear()
        self.reader = None
        if mapping is not None:
            try:
                mapping.close()
            except (BufferError, ValueError):  # a view is still alive somewhere: the GC will unmap it
                pass


def open_gguf(path: str | Path) -> GGUFFile:
    """Map and check ``path``; BadModelFileError (one sentence, naming the file) if it is not a usable GGUF."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise BadModelFileError(path, f"the file cannot be read ({exc.strerror or exc}).") from exc
    if magic != b"GGUF":
        raise BadModelFileError(path, "it is not a GGUF file (the first bytes are not 'GGUF').")
    try:
        reader = _reader_class()(path, "r")
    except ValueError as exc:
        raise BadModelFileError(path, _reason(exc, size)) from exc
    except (IndexError, OverflowError, TypeError, KeyError, UnicodeDecodeError, MemoryError) as exc:
        raise BadModelFileError(path, f"the file is truncated or corrupt ({type(exc).__name__}: {exc}).") from exc
    file = GGUFFile(path=path, reader=reader, size=size, tensors={t.name: t for t in reader.tensors})
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise BadModelFileError(path, f"the file is truncated: it has {size:,} bytes, but its tensors "
                                      f"reach byte {end:,}.")
    return file


def _reason(exc: ValueError, size: int) -> str:
    text = str(exc)
    if "GGMLQuantizationType" in text:  # an enum lookup of a type id this gguf package does not know
        import re

        digits = re.findall(r"\d+", text.split(" is not", 1)[0])
        number = digits[-1] if digits else "?"
        return f"it uses a quantization type (number {number}) that Hearth cannot read."
    if "version" in text.lower():
        return f"its GGUF version is not supported ({text})."
    if "reshape" in text or "buffer is smaller" in text:  # a tensor reaches past the end of the file
        return f"the file is truncated: it ends after {size:,} bytes, inside its tensor data."
    return f"the file is truncated or corrupt ({text})."
