"""One civicscore replica of `make cluster`: `python -m civicscore` on a fixed port, with its own folder and log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from civicscore.cluster.processes import stop_process, tail

HOST = "127.0.0.1"


class Replica:
    """A replica process; `token_file` is shared: only the replica that creates the administrator writes it."""

    def __init__(self, number: int, *, port: int, folder: Path, database_url: str, rules: Path, token_file: Path,
                 pool_size: int, demo_data: bool, extra_args: Sequence[str] = ()) -> None:
        self.number = number
        self.port = port
        self.folder = folder
        self.log_path = folder / "server.log"
        self.port_file = folder / "port"
        self.command = [
            sys.executable, "-m", "civicscore", "--listen", f"{HOST}:{port}", "--database", database_url,
            "--rules", str(rules), "--bootstrap-admin-token-file", str(token_file), "--port-file", str(self.port_file),
            "--db-pool-size", str(pool_size), *(("--demo-data",) if demo_data else ()), *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Start the process; `wait_serving` waits until it serves."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches `make cluster`, which stops the
            # replicas in order, instead of reaching every process at once.
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_serving(self, timeout_s: float) -> None:
        """Wait until the replica has written its port file (it does so once serving); raise with its log."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while not self.port_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"replica {self.number} exited with {self.process.returncode} while starting; "
                                   f"its log ({self.log_path}):\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {self.number} did not start within {timeout_s:.0f} s; its log "
                                   f"({self.log_path}):\n{tail(self.log_path)}")
            time.sleep(0.1)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exit_code(self) -> int | None:
        """None while running (or never started), else how it ended (negative: the signal that ended it)."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM (calls in flight finish within the replica's shutdown grace), SIGKILL after `timeout_s`."""
        if self.process is None:
            return None
        return stop_process(self.process, sig=signal.SIGTERM, timeout_s=timeout_s)
