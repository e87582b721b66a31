"""Figure (j): the committee's review queue page, beside the same data read through gRPC in the same run.

One server with the demo data (141 Hanoi units, two quarters) and its console. A signed-in committee
member's browser is stood for by an HTTP client holding the session cookie: it fetches the queue page
of the newest quarter (every current recommendation, about 260 rows, rendered) `--console-reads` times.
The baseline is what the page costs at the gRPC layer: the same person's SDK client making the calls the
page makes (WhoAmI, ListUnits, ListRecommendations, ListPeriods), read whole, the same number of times.
The ratio is what the console (HTTP, templates, the SDK's conversion) adds.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from civicscore_client import Client
from tests.serverproc import ServerProcess, admin_client

MEMBER, PASSWORD = "bench.committee", "bench-committee-password-2026"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--console-reads", type=int, default=200, help="(j): queue page loads and gRPC baselines")
    parser.add_argument("--only-console", action="store_true",
                        help="run figure (j) alone; only its row of RESULTS.md is rewritten")
    parser.add_argument("--no-console", action="store_true", help="leave figure (j) out")


def _percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return ordered[len(ordered) // 2], ordered[max(0, int(len(ordered) * 0.99) - 1)]


def _signed_in_opener(base: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/sign-in", timeout=30).read().decode()
    nonce = re.search(r'name="csrf" value="([^"]+)"', page)
    assert nonce, "no CSRF field on the sign-in page"
    form = urllib.parse.urlencode({"csrf": nonce[1], "identity_id": MEMBER, "password": PASSWORD, "next": "/"})
    request = urllib.request.Request(f"{base}/sign-in", data=form.encode(), headers={"Origin": base})
    opener.open(request, timeout=30).read()
    assert any(cookie.name == "cs_session" for cookie in jar), "sign-in did not set a session"
    return opener


def console_figure(out: Path, reads: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(out, workers=1, extra_args=(
        "--demo-data", "--console-listen", "127.0.0.1:0", "--console-port-file", str(out / "console.port"),
        "--rate-limit", "100000", "--rate-burst", "100000"))
    server.start(timeout=300)
    try:
        base = f"http://127.0.0.1:{(out / 'console.port').read_text().strip()}"
        with admin_client(server.address) as admin:
            admin.create_identity(MEMBER, "Bench committee member", roles=["committee"])
            admin.set_password(MEMBER, PASSWORD)
            period = max(p.period_id for p in admin.list_periods() if p.units_evaluated)
            token = admin.sign_in(MEMBER, PASSWORD).token
        opener = _signed_in_opener(base)
        url = f"{base}/quarters/{period}/queue"
        page_bytes = len(opener.open(url, timeout=60).read())  # warm up
        with Client(server.address, token=token) as member:
            def through_grpc() -> int:
                member.whoami()
                units = list(member.list_units())
                periods = list(member.list_periods())
                recommendations = list(member.list_recommendations(period))
                return len(units) + len(periods) + len(recommendations)

            rows = through_grpc()
            page_ms, grpc_ms = [], []
            for _ in range(reads):  # interleaved, so that noise falls on both alike
                start = time.perf_counter()
                opener.open(url, timeout=60).read()
                page_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                through_grpc()
                grpc_ms.append((time.perf_counter() - start) * 1000)
            recommendations = sum(1 for _ in member.list_recommendations(period))
    finally:
        server.stop()
    page_p50, page_p99 = _percentiles(page_ms)
    grpc_p50, grpc_p99 = _percentiles(grpc_ms)
    result = {"reads": reads, "period": period, "recommendations": recommendations, "page_bytes": page_bytes,
              "grpc_items": rows, "page_p50_ms": round(page_p50, 2), "page_p99_ms": round(page_p99, 2),
              "grpc_p50_ms": round(grpc_p50, 2), "grpc_p99_ms": round(grpc_p99, 2),
              "ratio_p50": round(page_p50 / grpc_p50, 2), "ratio_p99": round(page_p99 / grpc_p99, 2)}
    print(f"(j) queue page ({recommendations} recommendations, {page_bytes:,} bytes) p50 {page_p50:.1f} ms, "
          f"p99 {page_p99:.1f} ms; the same data through gRPC p50 {grpc_p50:.1f} ms, p99 {grpc_p99:.1f} ms; "
          f"ratio {result['ratio_p50']} (p99 {result['ratio_p99']})", flush=True)
    return result


def update_results(path: Path, j: dict[str, Any], when: str) -> None:
    """`--only-console`: put this run's (j) row into RESULTS.md in place of the last one (or after the table)."""
    row = result_row(j).replace(f"{j['reads']} loads", f"{j['reads']} loads (`--only-console`, {when})")
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [i for i, line in enumerate(lines) if line.startswith("| (j)")]
    if found:
        lines[found[0]] = row
    else:
        last = max(i for i, line in enumerate(lines) if line.startswith("| ("))
        lines.insert(last + 1, row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def result_row(j: dict[str, Any] | None) -> str:
    if not j:
        return "| (j) console queue page | not run (`--no-console`) | | | |"
    return (f"| (j) the console's review queue page, {j['period']}, {j['recommendations']} recommendations of "
            f"141 units ({j['page_bytes']:,} bytes), {j['reads']} loads by a signed-in committee member | "
            f"p50 {j['page_p50_ms']} ms, p99 {j['page_p99_ms']} ms | the same person's gRPC calls for the same "
            f"data (WhoAmI, ListUnits, ListPeriods, ListRecommendations): p50 {j['grpc_p50_ms']} ms, p99 "
            f"{j['grpc_p99_ms']} ms | {j['ratio_p50']}x (p99 {j['ratio_p99']}x) | (measured) |")
