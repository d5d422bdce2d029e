"""The pool runtime behind ``chaospool.pool``: core, supervision, channel backends."""
