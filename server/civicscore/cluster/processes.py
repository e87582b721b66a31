"""Ports and processes for a cluster on one machine.

Replicas keep their port across restarts (nginx's upstream names it), so ports are chosen up front
instead of letting each process bind port 0. They are picked below the kernel's ephemeral range:
the kernel gives ports in that range to every outgoing connection (to PostgreSQL, from nginx to a
replica), and such a connection could take a restarting replica's port between two of its lives.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 20000
_given: set[int] = set()
_given_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on, outside the ephemeral range, not given before here."""
    top = _ephemeral_start()
    low = _LOWEST_PORT if top - _LOWEST_PORT >= 1000 else 10000
    candidates = list(range(low, top))
    random.shuffle(candidates)
    for port in candidates[:2000]:
        with _given_lock:
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    raise OSError(f"no free port on {host} between {low} and {top}")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port now."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def wait_for_port(process: subprocess.Popen[bytes], host: str, port: int, *, timeout_s: float, what: str,
                  log: Path) -> None:
    """Wait until `process` accepts connections on host:port; raise, with its log, if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while not port_open(host, port):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {host}:{port}; "
                               f"its log ({log}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f} s; "
                               f"its log ({log}):\n{tail(log)}")
        time.sleep(0.05)


def tail(log: Path, lines: int = 30) -> str:
    """The last lines of a log file (empty if there is none yet)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
    """Send `sig`, wait up to `timeout_s` for the exit, then SIGKILL; the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
