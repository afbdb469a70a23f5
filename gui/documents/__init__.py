"""The Documents view: collections of files for chatting with your documents (engine/rag)."""
