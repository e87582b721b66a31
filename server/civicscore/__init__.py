"""civicscore: rules-driven evaluation and recommendations for Hanoi's reform tasks.

Layers (dependencies point down): `api` (gRPC servicers) -> use cases
(`ingest`, `evaluate`, `queries`) -> `domain`, `ruleset`, `engine`, `store`.
"""

__version__ = "0.1.0"
