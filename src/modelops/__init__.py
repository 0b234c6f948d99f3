"""modelops: a Git/DVC-backed pipeline and registry for the whole life of one model."""

__version__ = "0.1.0"
