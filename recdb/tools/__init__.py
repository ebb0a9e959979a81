"""Tooling around the runtime: the demo, offline evaluation, benchmarks and the soak test.

Nothing in the runtime (`recdb.db`, `recdb.worker`, `recdb.encoders`, `recdb.sequence`,
`recdb.datasets`, `recdb.cli`'s runtime commands) imports this package; CI checks that.
"""
