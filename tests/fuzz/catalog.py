"""Every RPC of every civicscore service, read from the generated descriptors.

Nothing here names a service or a method: a new RPC in `protos/` appears in `RPCS` as soon as the code
is regenerated, and the suite fuzzes it with the generic strategies.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

import civicscore_api.v1


@dataclass(frozen=True)
class Rpc:
    """One method of one service, with the classes of its messages."""

    service: str  # full name, e.g. civicscore.v1.UnitService
    method: str  # e.g. UpsertUnits
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        """The HTTP/2 path of the call, e.g. `/civicscore.v1.UnitService/UpsertUnits`."""
        return f"/{self.service}/{self.method}"

    @property
    def short(self) -> str:
        """`UnitService.UpsertUnits`: how reports name the RPC."""
        return f"{self.service.rsplit('.', 1)[-1]}.{self.method}"

    @property
    def request_descriptor(self) -> Descriptor:
        descriptor: Descriptor = self.request.DESCRIPTOR
        return descriptor


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"{civicscore_api.v1.__name__}.{info.name}")
            for info in pkgutil.iter_modules(civicscore_api.v1.__path__) if info.name.endswith("_pb2")]


def _rpc(service: str, method: MethodDescriptor) -> Rpc:
    return Rpc(service=service, method=method.name,
               request=message_factory.GetMessageClass(method.input_type),
               response=message_factory.GetMessageClass(method.output_type),
               client_streaming=method.client_streaming, server_streaming=method.server_streaming)


def discover() -> tuple[Rpc, ...]:
    """Every RPC of every service in civicscore_api.v1, ordered by service and method name."""
    found = [_rpc(service.full_name, method)
             for module in _modules() for service in module.DESCRIPTOR.services_by_name.values()
             for method in service.methods]
    return tuple(sorted(found, key=lambda rpc: (rpc.service, rpc.method)))


RPCS: tuple[Rpc, ...] = discover()
BY_SHORT: dict[str, Rpc] = {rpc.short: rpc for rpc in RPCS}
