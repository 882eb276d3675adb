"""One module per framework, each exposing the same small interface (see ``benchmarks.common``).

asv imports every module of the suite at discovery, in environments that lack most frameworks, so these
modules import their framework inside try/except and report it missing from ``require()``.
"""
