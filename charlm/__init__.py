"""charlm: the homework's character-level language models, made measurable."""

__version__ = "0.1.0"
