"""The worker side: command registry, runtime, built-in control ops, fork server.

Imports only ``chaospool._wire`` (never the pool, the engine or the DSL), so a worker stays
cheap to start.
"""
