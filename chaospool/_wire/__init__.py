"""The pool <-> worker wire protocol (standard library and msgspec only)."""
