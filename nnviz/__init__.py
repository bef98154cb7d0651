"""nnviz: watch a small neural network learn to read handwritten digits, and look inside it."""

__version__ = "0.1.0"
