"""Persistence: the Store interface and its SQLModel/SQLAlchemy implementation.

Only this package imports sqlmodel or sqlalchemy.
"""

from civicscore.store.base import (
    EvaluationRecord,
    IdempotencyConflict,
    IdempotencyRecord,
    Page,
    RecommendationRecord,
    SaveEvaluationsResult,
    Store,
    StoreError,
)

__all__ = [
    "EvaluationRecord",
    "IdempotencyConflict",
    "IdempotencyRecord",
    "Page",
    "RecommendationRecord",
    "SaveEvaluationsResult",
    "Store",
    "StoreError",
]
