"""The channel and the stubs a client holds, shared by its read and write calls."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

import grpc

from civicscore_api.v1 import (
    assignments_pb2_grpc,
    evaluations_pb2_grpc,
    measurements_pb2_grpc,
    outcomes_pb2_grpc,
    periods_pb2_grpc,
    rulesets_pb2_grpc,
    units_pb2_grpc,
)
from civicscore_client._calls import CHANNEL_OPTIONS, Caller


class Connection:
    """One channel to one server with a stub per service; closed by `close()` or by leaving `with`."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.address = address
        self._calls = Caller(
            timeout=timeout,
            max_attempts=max_attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            metadata=metadata,
        )
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
        self._units = units_pb2_grpc.UnitServiceStub(self._channel)
        self._assignments = assignments_pb2_grpc.AssignmentServiceStub(self._channel)
        self._outcomes = outcomes_pb2_grpc.OutcomeServiceStub(self._channel)
        self._measurements = measurements_pb2_grpc.MeasurementServiceStub(self._channel)
        self._evaluations = evaluations_pb2_grpc.EvaluationServiceStub(self._channel)
        self._rulesets = rulesets_pb2_grpc.RulesetServiceStub(self._channel)
        self._periods = periods_pb2_grpc.PeriodServiceStub(self._channel)

    @property
    def timeout(self) -> float:
        """Default deadline of each call attempt, in seconds."""
        return self._calls.timeout

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
