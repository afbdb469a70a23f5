"""GGUF files read in place and run quantized on the fast path (no converted copy).

``load_gguf(path, config, ...)`` (load.py) is what ``engine.loader.load_model``
calls for a ``.gguf``: reader.py maps and checks the file, metadata.py reads the
architecture (families.py: llama, qwen2/3, gemma/2/3, phi3), tokenizer.py builds
the tokenizer, quants.py / pack.py repack the blocks into the fast path's Int4 /
Int8 / bf16 linears, memory.py checks that it
fits first, cache.py keeps packed weights of files slow to repack, and model.py
stands in for the transformers module. full_model.py
builds the full-precision transformers model on demand (fine-tuning, the lab's
attention maps); synthetic.py writes random GGUFs for tests and benchmarks.
"""
