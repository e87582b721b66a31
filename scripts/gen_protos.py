"""Generate the Python protobuf/gRPC code and typed stubs, and the API reference, from protos/.

The generated package is `civicscore_api` (under clients/python) so that it
cannot clash with the server's own `civicscore` package; protoc names modules
after the proto path (`civicscore.v1`), so imports are rewritten here.

docs/api.md is made from the proto comments (scripts/api_docs.py); every service, RPC,
message, field and enum value must have one.

Usage:
    python scripts/gen_protos.py            # regenerate in place
    python scripts/gen_protos.py --check    # exit 1 if the committed code or docs are stale, or a comment is missing
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_docs import descriptor_set, render

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PACKAGE = ROOT / "clients" / "python" / "civicscore_api"
API_DOCS = ROOT / "docs" / "api.md"

_MODULE_REF = re.compile(r"\bcivicscore\.v1\.(\w+_pb2(?:_grpc)?)\b")
_FROM_IMPORT = re.compile(r"^from civicscore\.v1 import ", re.MULTILINE)


def _rewrite(text: str) -> str:
    text = _FROM_IMPORT.sub("from civicscore_api.v1 import ", text)
    return _MODULE_REF.sub(r"civicscore_api.v1.\1", text)


def generate(into: Path) -> None:
    """Run protoc for every proto file and write the fixed-up package into `into`."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as raw:
        wkt = Path(protoc.__file__).parent / "_proto"
        bindir = Path(sys.executable).parent
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"-I{PROTO_ROOT}",
            f"-I{wkt}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        src = Path(raw) / "civicscore"
        for path in sorted(src.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(src)
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    (into / "__init__.py").write_text('"""Generated protobuf and gRPC code for civicscore. Do not edit."""\n')
    (into / "v1" / "__init__.py").write_text("")
    (into / "py.typed").write_text("")


def _tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): p.read_text(encoding="utf-8")
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def api_docs() -> str:
    """docs/api.md as it should be; exits when an element of the protos has no comment."""
    text, missing = render(descriptor_set(PROTO_ROOT))
    if missing:
        print("these have no comment, or no domain, in protos/ (docs/api.md needs both):", file=sys.stderr)
        print("\n".join(f"  {item}" for item in missing), file=sys.stderr)
        raise SystemExit(1)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    opts = parser.parse_args()
    docs = api_docs()
    if not opts.check:
        if OUT_PACKAGE.exists():
            shutil.rmtree(OUT_PACKAGE)
        generate(OUT_PACKAGE)
        API_DOCS.parent.mkdir(exist_ok=True)
        API_DOCS.write_text(docs, encoding="utf-8")
        print(f"generated {OUT_PACKAGE.relative_to(ROOT)} and {API_DOCS.relative_to(ROOT)}")
        return 0
    if not API_DOCS.exists() or API_DOCS.read_text(encoding="utf-8") != docs:
        print("docs/api.md is stale: run `make gen` and commit the result", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "civicscore_api"
        generate(fresh)
        want, have = _tree(fresh), _tree(OUT_PACKAGE) if OUT_PACKAGE.exists() else {}
        if want == have:
            print("generated code is up to date")
            return 0
        for name in sorted(set(want) | set(have)):
            if want.get(name) != have.get(name):
                diff = difflib.unified_diff(
                    have.get(name, "").splitlines(), want.get(name, "").splitlines(),
                    f"committed/{name}", f"fresh/{name}", lineterm="", n=1,
                )
                print("\n".join(list(diff)[:40]))
        print("generated code is stale: run `make gen` and commit the result", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
