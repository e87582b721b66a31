"""The API reference (docs/api.md), made from the comments in protos/; used by gen_protos.py.

Every service, RPC, message, field, enum and enum value must have a comment, and
every string and number field of a message a request can carry must declare its
domain (`(civicscore.v1.domain)`, see domains.proto): the ones that do not are
listed, and `make check-gen` fails on them. Each request field's domain is
rendered in words beside its comment.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

# Field numbers in descriptor.proto, for SourceCodeInfo paths.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM = 2, 3, 4
_VALUE, _METHOD = 2, 2

_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double", descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64", descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32", descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string", descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
}


def descriptor_set(proto_root: Path) -> descriptor_pb2.FileDescriptorSet:
    """The civicscore proto files compiled with their comments."""
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        wkt = Path(protoc.__file__).parent / "_proto"
        args = ["protoc", f"-I{proto_root}", f"-I{wkt}", "--include_source_info", "--include_imports",
                f"--descriptor_set_out={out}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        result = descriptor_pb2.FileDescriptorSet()
        result.ParseFromString(out.read_bytes())
        return result


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {tuple(loc.path): " ".join(line.strip() for line in loc.leading_comments.strip().splitlines())
            for loc in file.source_code_info.location if loc.leading_comments.strip()}


def _type(field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, str]) -> str:
    if field.type_name in maps:
        return maps[field.type_name]
    name = field.type_name.lstrip(".").removeprefix("civicscore.v1.") if field.type_name else \
        _SCALARS.get(field.type, "?")
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {name}"
    return name


def _map_types(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Full names of the map entry messages protoc makes, as `map<key, value>`."""
    found = {}
    for path, message in _messages(file, entries=True):
        if message.options.map_entry:
            key, value = message.field
            owner = _name_of(file, path)
            found[f".{file.package}.{owner}"] = f"map<{_type(key, {})}, {_type(value, {})}>"
    return found


def _name_of(file: descriptor_pb2.FileDescriptorProto, path: tuple[int, ...]) -> str:
    names = []
    message = file.message_type[path[1]]
    names.append(message.name)
    for index in path[3::2]:
        message = message.nested_type[index]
        names.append(message.name)
    return ".".join(names)


_F = descriptor_pb2.FieldDescriptorProto
_STRING_KINDS = {"TEXT", "ID", "UNIT_CODE", "IDENTITY_ID", "INDICATOR_CODE", "DATE", "PERIOD", "RESOURCE_NAME",
                 "LANGUAGE_CODE", "FILE_CONTENT", "DIGEST", "OUTPUT_ONLY", "SECRET", "EVALUATION_PERIOD"}
_NUMBER_KINDS = {_F.TYPE_DOUBLE: {"NUMBER", "OUTPUT_ONLY"}, _F.TYPE_FLOAT: {"NUMBER", "OUTPUT_ONLY"}}
_INTEGER_TYPES = (_F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_SINT32, _F.TYPE_SINT64)


class _Domains:
    """Reads `(civicscore.v1.domain)` options with a descriptor pool of its own, built from the compiled
    protos: no generated code needed, and the same answer whether or not a process imported it."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        pool = descriptor_pool.DescriptorPool()
        for file in files.file:
            pool.Add(file)
        self.options_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.FieldOptions"))
        self.extension = pool.FindExtensionByName("civicscore.v1.domain")
        kind_enum = pool.FindEnumTypeByName("civicscore.v1.ValueKind")
        self.kind_names = {v.number: v.name.removeprefix("VALUE_KIND_") for v in kind_enum.values}

    def of(self, field: descriptor_pb2.FieldDescriptorProto) -> Any:
        """The field's domain option, or None."""
        options: Any = self.options_class.FromString(field.options.SerializeToString())
        return options.Extensions[self.extension] if options.HasExtension(self.extension) else None


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


_TYPE_MAX = {_F.TYPE_INT32: 2**31 - 1, _F.TYPE_INT64: 2**63 - 1, _F.TYPE_UINT32: 2**32 - 1,
             _F.TYPE_UINT64: 2**64 - 1}


def _domain_words(domain: Any, kind: str, field_type: int = 0) -> str:
    """A declared domain in words, as docs/api.md states it."""
    d: Any = domain
    maximum = _TYPE_MAX.get(field_type, 0) if d.maximum == 0 and d.minimum == 0 else d.maximum
    words = {
        "OUTPUT_ONLY": "output only; ignored in requests",
        "TEXT": f"text of at most {_number(d.max_length)} characters, without control, bidirectional-override, "
                "zero-width or noncharacter code points",
        "ID": f"1-{_number(d.max_length)} characters of letters, digits and `._:-`",
        "UNIT_CODE": "a unit code: 1-40 characters of A-Z, 0-9 and `-`, starting with a letter or digit",
        "IDENTITY_ID": "an identity id: 2-63 characters of a-z, 0-9, `-` and `.`, starting with a letter or digit",
        "INDICATOR_CODE": "an indicator code: dot-separated words of a-z, 0-9 and `_`, at most 100 characters",
        "DATE": "a date `YYYY-MM-DD` from 2000-01-01 to 2100-12-31",
        "PERIOD": "a quarter `YYYY-Qn` from 2000-Q1 to 2100-Q4 (`periods/` in front is accepted)",
        "EVALUATION_PERIOD": "a quarter `YYYY-Qn`, a half-year `YYYY-H1` or `YYYY-H2`, or a year `YYYY`, from 2000 "
                             "to 2100 (`periods/` in front is accepted)",
        "NUMBER": f"a finite number from {_number(d.minimum)} to {_number(d.maximum)}",
        "INTEGER": f"a whole number from {_number(d.minimum)} to {_number(maximum)}",
        "RESOURCE_NAME": "a resource name " + " or ".join(f"`{p.strip()}`" for p in d.pattern.split("|")),
        "LANGUAGE_CODE": "`vi` or `en`",
        "FILE_CONTENT": f"UTF-8 text of at most {_number(d.max_length)} characters",
        "DIGEST": "a SHA-256 digest: 64 lowercase hexadecimal digits",
        "SECRET": f"a secret of at most {_number(d.max_length)} characters, without control, bidirectional-override "
                  "or zero-width code points; never echoed in an error, logged or stored in clear",
    }
    return words[kind]


def _request_messages(files: descriptor_pb2.FileDescriptorSet) -> set[str]:
    """Full names (`.civicscore.v1.Outcome`) of every message a request can carry, directly or nested."""
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for file in files.file:
        if file.package == "civicscore.v1":
            for path, message in _messages(file, entries=True):
                messages[f".{file.package}.{_name_of(file, path)}"] = message
    todo = [method.input_type for file in files.file if file.package == "civicscore.v1"
            for service in file.service for method in service.method]
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in found or name not in messages:
            continue
        found.add(name)
        todo.extend(f.type_name for f in messages[name].field if f.type == _F.TYPE_MESSAGE)
    return found


def _field_domain(field: descriptor_pb2.FieldDescriptorProto, domains: _Domains, owner: str) -> tuple[str, str | None]:
    """(the domain in words, or a problem with the declaration) of one field of a request message."""
    domain = domains.of(field)
    kind_names = domains.kind_names
    if field.type == _F.TYPE_MESSAGE:
        if field.type_name == ".google.protobuf.Timestamp":
            if domain is not None and kind_names[domain.kind] == "OUTPUT_ONLY":
                return _domain_words(domain, "OUTPUT_ONLY"), None
            return ("a time from 2000-01-01T00:00:00+07:00 to 2100-12-31T23:59:59.999999999+07:00 "
                    "(Hanoi time); nanos 0-999,999,999"), None
        return "", None
    if field.type == _F.TYPE_ENUM:
        return f"one of the values of `{field.type_name.rsplit('.', 1)[-1]}`", None
    if field.type == _F.TYPE_BOOL:
        if domain is not None and kind_names[domain.kind] == "OUTPUT_ONLY":
            return _domain_words(domain, "OUTPUT_ONLY"), None
        return "", None
    if domain is None:
        return "", f"{owner}.{field.name} (a request can carry it) declares no (domain)"
    kind = kind_names.get(domain.kind, "UNSPECIFIED")
    allowed = (_STRING_KINDS if field.type == _F.TYPE_STRING
               else {"INTEGER", "OUTPUT_ONLY"} if field.type in _INTEGER_TYPES
               else _NUMBER_KINDS.get(field.type, set()))
    if kind not in allowed:
        return "", f"{owner}.{field.name}: domain {kind} does not fit its type"
    return _domain_words(domain, kind, field.type), None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(files: descriptor_pb2.FileDescriptorSet) -> tuple[str, list[str]]:
    """(the Markdown reference, the elements without a comment)."""
    missing: list[str] = []
    lines = ["# civicscore API reference", "",
             "Generated by `make gen` from the comments in `protos/civicscore/v1/`; do not edit by hand.",
             "Every RPC is authorised by `server/civicscore/auth/policy.py` (see README, Security).", ""]
    ours = [f for f in files.file if f.package == "civicscore.v1"]
    requested = _request_messages(files)
    domains = _Domains(files)
    for file in ours:
        notes = _comments(file)
        maps = _map_types(file)
        lines += [f"## `{file.name}`", ""]
        for s_index, service in enumerate(file.service):
            doc = notes.get((_SERVICE, s_index))
            if doc is None:
                missing.append(f"{file.name}: service {service.name}")
            lines += [f"### service `{service.name}`", "", doc or "", "",
                      "| RPC | request → response | |", "|---|---|---|"]
            for m_index, method in enumerate(service.method):
                mdoc = notes.get((_SERVICE, s_index, _METHOD, m_index))
                if mdoc is None:
                    missing.append(f"{file.name}: rpc {service.name}.{method.name}")
                stream_in = "stream " if method.client_streaming else ""
                stream_out = "stream " if method.server_streaming else ""
                types = (f"{stream_in}`{method.input_type.lstrip('.').removeprefix('civicscore.v1.')}` → "
                         f"{stream_out}`{method.output_type.lstrip('.').removeprefix('civicscore.v1.')}`")
                lines.append(f"| `{method.name}` | {types} | {_cell(mdoc or '')} |")
            lines.append("")
        for path, message in _messages(file):
            doc = notes.get(path)
            if doc is None:
                missing.append(f"{file.name}: message {message.name}")
            lines += [f"### message `{message.name}`", "", doc or "", ""]
            if message.field:
                lines += ["| field | type | |", "|---|---|---|"]
            full_name = f".{file.package}.{_name_of(file, path)}"
            for f_index, field in enumerate(message.field):
                fdoc = notes.get((*path, _FIELD, f_index))
                if fdoc is None:
                    missing.append(f"{file.name}: field {message.name}.{field.name}")
                text = fdoc or ""
                if full_name in requested:
                    words, problem = _field_domain(field, domains, message.name)
                    if problem:
                        missing.append(f"{file.name}: {problem}")
                    if words:
                        text = f"{text} *Domain:* {words}."
                lines.append(f"| `{field.name}` | `{_type(field, maps)}` | {_cell(text)} |")
            lines.append("")
        for path, enum in _enums(file):
            doc = notes.get(path)
            if doc is None:
                missing.append(f"{file.name}: enum {enum.name}")
            lines += [f"### enum `{enum.name}`", "", doc or "", "", "| value | |", "|---|---|"]
            for v_index, value in enumerate(enum.value):
                vdoc = notes.get((*path, _VALUE, v_index))
                if vdoc is None:
                    missing.append(f"{file.name}: enum value {enum.name}.{value.name}")
                lines.append(f"| `{value.name}` | {_cell(vdoc or '')} |")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n", missing


def _messages(file: descriptor_pb2.FileDescriptorProto, *, entries: bool = False
              ) -> Iterator[tuple[tuple[int, ...], descriptor_pb2.DescriptorProto]]:
    """Messages and nested messages with their SourceCodeInfo paths (map entries only if `entries`)."""
    def walk(path: tuple[int, ...], message: descriptor_pb2.DescriptorProto
             ) -> Iterator[tuple[tuple[int, ...], descriptor_pb2.DescriptorProto]]:
        if message.options.map_entry and not entries:
            return
        yield path, message
        for index, nested in enumerate(message.nested_type):
            yield from walk((*path, _NESTED, index), nested)

    for index, message in enumerate(file.message_type):
        yield from walk((_MESSAGE, index), message)


def _enums(file: descriptor_pb2.FileDescriptorProto
           ) -> Iterator[tuple[tuple[int, ...], descriptor_pb2.EnumDescriptorProto]]:
    for index, enum in enumerate(file.enum_type):
        yield (_ENUM, index), enum
    for path, message in _messages(file):
        for index, enum in enumerate(message.enum_type):
            yield (*path, _NESTED_ENUM, index), enum


if __name__ == "__main__":
    text, gaps = render(descriptor_set(Path(sys.argv[1])))
    print(text)
    print("\n".join(gaps), file=sys.stderr)
