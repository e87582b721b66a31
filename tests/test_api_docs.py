"""docs/api.md comes from the proto comments, and a proto element without one is caught."""

from __future__ import annotations

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


def test_an_element_without_a_comment_is_listed(tmp_path: Path) -> None:
    package = tmp_path / "civicscore" / "v1"
    package.mkdir(parents=True)
    (package / "x.proto").write_text(
        'syntax = "proto3";\npackage civicscore.v1;\n'
        "// A documented message.\nmessage Good {\n  // Documented.\n  string a = 1;\n  string b = 2;\n}\n"
        "message Bare {}\n"
        "// A service.\nservice S {\n  rpc Call(Good) returns (Bare);\n}\n", encoding="utf-8")
    text, missing = render(descriptor_set(tmp_path))
    assert sorted(missing) == ["civicscore/v1/x.proto: field Good.b", "civicscore/v1/x.proto: message Bare",
                               "civicscore/v1/x.proto: rpc S.Call"]
    assert "### message `Good`" in text
