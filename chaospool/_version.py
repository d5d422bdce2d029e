"""The package's version, in a module of its own: the engine records it in every journal
without importing the package facade (a layer above it; docs/design.md)."""

__version__ = "0.4.1"
