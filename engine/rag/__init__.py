"""Chat with your documents: collections of files, hybrid retrieval, cited answers. Offline.

- ``embedder.py`` — the sentence-embedding model (all-MiniLM-L6-v2 from its PyPI zip, or a local folder).
- ``db.py`` + ``schema.py`` — documents.db (SQLite, WAL): collections, files, chunks, FTS5, vectors.
- ``collections.py`` — create, rename, delete; add and remove files and folders; file states.
- ``scan.py`` — what changed on disk; ``index.py`` — the resumable indexer; ``lock.py`` — one indexer each.
- ``chunker.py`` — paragraph/heading-aware token-sized chunks with exact character offsets.
- ``vectors.py`` — in-memory matrices; ``search.py`` — BM25 + vectors fused by reciprocal rank.
- ``answer.py`` — passages into the prompt with numbers, replies cite [n]; ``links.py`` — conversations'
  collections and replies' passages.
- ``evaluate.py`` — recall@k and MRR; ``bench.py`` — indexing and query speed; ``tasks.py`` — worker tasks.
"""
