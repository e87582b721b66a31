"""PDF from the report's HTML, printed by headless Chromium (Debian's `chromium` package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from civicscore.errors import EvaluationFailed, FailedPrecondition

TIMEOUT_S = 90.0
INSTALL_HINT = "install it on the server with `apt-get install chromium` (Debian's package) and ask again"


class ChromiumMissing(FailedPrecondition):
    """The server cannot make PDFs: Chromium is not installed."""

    reason = "CHROMIUM_MISSING"


class PdfFailed(EvaluationFailed):
    """Chromium ran but did not produce the PDF (crashed or timed out); retrying may help."""

    reason = "PDF_FAILED"


def find_chromium() -> str | None:
    """Debian's /usr/bin/chromium, else `chromium` or `chromium-browser` on the PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args(binary: str, user_data_dir: Path, pdf: Path, html: Path) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-pdf-header-footer", "--print-to-pdf-no-header",  # no date/URL margins (new and old spelling)
            f"--user-data-dir={user_data_dir}", f"--print-to-pdf={pdf}", html.as_uri()]


def html_to_pdf(html: str, *, timeout_s: float = TIMEOUT_S) -> bytes:
    """Print the HTML to PDF with headless Chromium in a fresh profile; raise ChromiumMissing or PdfFailed."""
    binary = find_chromium()
    if binary is None:
        raise ChromiumMissing(f"PDF reports need Chromium, which is not installed on the server: {INSTALL_HINT}; "
                              "HTML and CSV reports work without it")
    with tempfile.TemporaryDirectory(prefix="civicscore-pdf-") as work:
        root = Path(work)
        page, pdf, profile = root / "report.html", root / "report.pdf", root / "profile"
        page.write_text(html, encoding="utf-8")
        profile.mkdir()
        env = {**os.environ, "HOME": str(root)}
        try:
            done = subprocess.run(chromium_args(binary, profile, pdf, page), capture_output=True, timeout=timeout_s,
                                  env=env, cwd=root, check=False)
        except subprocess.TimeoutExpired:
            raise PdfFailed(f"Chromium did not print the PDF within {timeout_s:g} s; try again") from None
        except OSError as error:
            raise PdfFailed(f"Chromium ({binary}) could not be started: {error}") from None
        if not pdf.exists() or pdf.stat().st_size == 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise PdfFailed(f"Chromium exited with {done.returncode} without writing the PDF: {' | '.join(tail)}")
        return pdf.read_bytes()
