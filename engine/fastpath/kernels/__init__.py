"""Hearth's own CPU kernels for one-row (decode) matmuls: gemv.c, built by build.py, called by gemv.py."""
