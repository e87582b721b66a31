"""Python SDK and command line for civicscore.

    from civicscore_client import Client, InvalidArgument

    with Client("127.0.0.1:50051") as client:
        client.submit_outcomes(outcomes)            # batches of 10,000, an idempotency key each
        evaluation = client.get_evaluation("2026-Q3", "SNV")

The generated messages live in `civicscore_api.v1`; this package adds deadlines, retries, paging,
short names and typed exceptions.
"""

from civicscore_client._calls import new_idempotency_key
from civicscore_client._client import MAX_BATCH, Client
from civicscore_client._errors import (
    AlreadyExists,
    Cancelled,
    CivicscoreError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ServerError,
    Unauthenticated,
    Unavailable,
    Violation,
)
from civicscore_client._names import (
    assignment_name,
    evaluation_name,
    period_id,
    period_kind,
    period_name,
    quarters_of,
    unit_code,
    unit_name,
)

__all__ = [
    "MAX_BATCH",
    "AlreadyExists",
    "Cancelled",
    "CivicscoreError",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "Violation",
    "assignment_name",
    "evaluation_name",
    "new_idempotency_key",
    "period_id",
    "period_kind",
    "period_name",
    "quarters_of",
    "unit_code",
    "unit_name",
]
