"""docs/api.md comes from the proto comments, and a proto element without one is caught."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from api_docs import descriptor_set, render  # noqa: E402


def test_the_committed_reference_is_the_one_the_protos_give() -> None:
    text, missing = render(descriptor_set(ROOT / "protos"))
    assert missing == []
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == text
    assert "| `ExplainEvaluation` |" in text and "`map<string, double>`" in text
    assert "Tỷ lệ đúng hạn" in text  # Vietnamese examples in comments survive


def test_an_element_without_a_comment_or_a_domain_is_listed(tmp_path: Path) -> None:
    package = tmp_path / "civicscore" / "v1"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "protos" / "civicscore" / "v1" / "domains.proto", package / "domains.proto")
    (package / "x.proto").write_text(
        'syntax = "proto3";\npackage civicscore.v1;\nimport "civicscore/v1/domains.proto";\n'
        "// A documented message.\nmessage Good {\n  // Documented.\n"
        "  string a = 1 [(domain) = {kind: VALUE_KIND_TEXT, max_length: 10}];\n  string b = 2;\n}\n"
        "message Bare {}\n"
        "// A service.\nservice S {\n  rpc Call(Good) returns (Bare);\n}\n", encoding="utf-8")
    text, missing = render(descriptor_set(tmp_path))
    assert sorted(m for m in missing if "x.proto" in m) == [
        "civicscore/v1/x.proto: Good.b (a request can carry it) declares no (domain)",
        "civicscore/v1/x.proto: field Good.b", "civicscore/v1/x.proto: message Bare",
        "civicscore/v1/x.proto: rpc S.Call"]
    assert "### message `Good`" in text
    assert "| `a` | `string` | Documented. *Domain:* text of at most 10 characters" in text
