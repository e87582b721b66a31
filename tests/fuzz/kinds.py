"""What kind of value a request field holds, from its declared domain, its name and its comment.

The field's domain (`[(civicscore.v1.domain) = {...}]`, where the contract declares one) comes first,
then names that mean more than their domain (an idempotency key is text to the domain table, but the
fuzzer must reuse keys to reach the replay and conflict paths), then the `.proto` comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from tests.fuzz import contract

try:  # the contract's field domains, where the protos declare them (issue 11, item 2)
    from civicscore_api.v1 import domains_pb2
except ImportError:  # an older contract: kinds come from names and comments only
    domains_pb2 = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Kind:
    """What a field holds, and the limits its domain declares."""

    name: str
    max_length: int = 0
    minimum: float | None = None
    maximum: float | None = None
    patterns: tuple[str, ...] = ()
    output_only: bool = False


_DOMAIN_KINDS = {
    "VALUE_KIND_TEXT": "text", "VALUE_KIND_ID": "id", "VALUE_KIND_UNIT_CODE": "unit_code",
    "VALUE_KIND_IDENTITY_ID": "identity_id", "VALUE_KIND_INDICATOR_CODE": "indicator", "VALUE_KIND_DATE": "date",
    "VALUE_KIND_PERIOD": "period", "VALUE_KIND_NUMBER": "number", "VALUE_KIND_INTEGER": "integer",
    "VALUE_KIND_RESOURCE_NAME": "resource", "VALUE_KIND_LANGUAGE_CODE": "language",
    "VALUE_KIND_FILE_CONTENT": "file_content", "VALUE_KIND_DIGEST": "digest", "VALUE_KIND_OUTPUT_ONLY": "text",
    "VALUE_KIND_SECRET": "text", "VALUE_KIND_EVALUATION_PERIOD": "evaluation_period",
}
# Names that mean more than their declared domain says (an idempotency key is text to the domain table,
# but the fuzzer must reuse keys to reach the replay and conflict paths).
_BY_NAME = {
    "idempotency_key": "idempotency_key", "page_token": "page_token", "filter": "filter", "cursor": "cursor",
    "path": "rule_path", "content": "file_content", "block": "block", "certificate_subject": "subject",
    "language_code": "language", "page_size": "page_size", "expected_digest": "digest", "expected_hash": "digest",
    "outcome_count": "count",
}
_PATTERN_IN_DOC = re.compile(r"`((?:[a-z]+/)[^`\s]*)`")


def _domain(field_descriptor: FieldDescriptor) -> Any | None:
    if domains_pb2 is None:
        return None
    options = field_descriptor.GetOptions()
    try:
        if options.HasExtension(domains_pb2.domain):
            return options.Extensions[domains_pb2.domain]
    except KeyError:
        return None
    return None


def kind_of(field_descriptor: FieldDescriptor) -> Kind:
    """The kind of a scalar field: declared domain first, then its name, then its comment."""
    doc = contract.doc(field_descriptor.full_name)
    domain = _domain(field_descriptor)
    output_only = doc.output_only
    base = "text"
    max_length = 0
    minimum = maximum = None
    patterns: tuple[str, ...] = ()
    if domain is not None:
        kind_name = domains_pb2.ValueKind.Name(domain.kind)
        output_only = output_only or kind_name == "VALUE_KIND_OUTPUT_ONLY"
        base = _DOMAIN_KINDS.get(kind_name, "text")
        max_length = domain.max_length
        if kind_name in ("VALUE_KIND_NUMBER", "VALUE_KIND_INTEGER"):
            minimum, maximum = domain.minimum, domain.maximum
        patterns = tuple(p.strip() for p in domain.pattern.split("|") if p.strip())
    else:
        base = _kind_from_doc(field_descriptor, doc.text)
        found = doc.length
        max_length = found[1] if found else 0
        patterns = tuple(_PATTERN_IN_DOC.findall(doc.text)) if base == "resource" else ()
    name = _BY_NAME.get(field_descriptor.name, base)
    if field_descriptor.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        name = "number"
    elif field_descriptor.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                                       FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
        name = _BY_NAME.get(field_descriptor.name, "integer")
    return Kind(name, max_length, minimum, maximum, patterns, output_only)


def _kind_from_doc(field_descriptor: FieldDescriptor, doc: str) -> str:
    name = field_descriptor.name
    if "YYYY-MM-DD" in doc or name.endswith(("_on", "_date")):
        return "date"
    if _PATTERN_IN_DOC.search(doc) and not name.endswith("_id"):
        return "resource"
    if "quarter" in doc.lower() or "YYYY-Qn" in doc:
        return "period"
    if name == "indicator" or "Indicator code" in doc:
        return "indicator"
    if name == "code":
        return "unit_code"
    if name == "identity_id":
        return "identity_id"
    if name.endswith("_id"):
        return "id"
    if "SHA-256" in doc:
        return "digest"
    return "text"


