"""Debian's nginx in front of civicscore replicas: its configuration, and running it in the foreground.

Every file nginx reads or writes (configuration, pid, logs, temporary files) is in one folder, so a
cluster needs no root, leaves the system's nginx alone, and two clusters never share a file. nginx
runs as a child process (`daemon off`) in a process group of its own: stopping the group stops its
workers too, even after a SIGKILL of the master.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from civicscore.cluster.processes import port_open, tail, wait_for_port

# Debian installs nginx in /usr/sbin, which is not on a non-root user's PATH.
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
UPSTREAM = "civicscore"
# Long calls: an EvaluatePeriod sends nothing until it is done (minutes for a national quarter), a
# client stream may pause, and an idle WatchRecommendations sends only its heartbeat (every 20 s).
# nginx's 60 s defaults would cut them; the client's deadline (passed on to the replica as
# grpc-timeout) is what should end a call, and this only bounds a replica that went silent.
LONG_CALL_TIMEOUT_S = 3600
# A replica that does not accept a connection on loopback within this is gone: try the next one.
CONNECT_TIMEOUT_S = 2
# A replica that failed a connection is left out for this long, then tried again (passive checks:
# open-source nginx has no active health checks).
FAIL_TIMEOUT_S = 5
# After a reload has taken effect, the time for a call an old worker passed on just before to reach its replica.
RELOAD_SETTLE_S = 1.0
# A reload or a graceful stop lets calls in flight finish for this long, then cuts them (clients
# retry with their idempotency key; a watch resumes from its cursor).
SHUTDOWN_TIMEOUT_S = 30


class NginxMissing(RuntimeError):
    """No usable nginx on this machine; the message says how to install one."""


def find_nginx() -> str:
    """The path of an nginx that can proxy gRPC (HTTP/2 and the gRPC module); raises NginxMissing."""
    path = shutil.which("nginx") or next((c for c in _CANDIDATES if os.access(c, os.X_OK)), None)
    if path is None:
        raise NginxMissing("nginx is not installed: run `make cluster-deps` (Debian's nginx; as root or with sudo)")
    try:
        shown = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NginxMissing(f"{path} -V failed ({error}): reinstall it with `make cluster-deps`") from error
    built_with = shown.stderr + shown.stdout  # nginx -V prints to stderr
    if "--with-http_v2_module" not in built_with:
        raise NginxMissing(f"{path} was built without HTTP/2 (nginx -V lacks --with-http_v2_module), which "
                           "grpc_pass needs: install Debian's nginx (`make cluster-deps`)")
    if "--without-http_grpc_module" in built_with:
        raise NginxMissing(f"{path} was built without the gRPC proxy module: install Debian's nginx "
                           "(`make cluster-deps`)")
    return path


def render_config(*, listen: str, upstreams: Sequence[str], folder: Path) -> str:
    """nginx.conf for a plaintext HTTP/2 listener on `listen` that spreads gRPC calls over `upstreams`."""
    if not upstreams:
        raise ValueError("an nginx upstream needs at least one replica")
    # Each replica twice: in the rotation, left out for fail_timeout after a failed connection or a cut
    # call; and as a backup that is never left out. nginx turns to the backups only when it holds every
    # replica failed: after replicas died in quick succession (each kill fails the calls it had in
    # flight), the ones already back would otherwise get no call until their fail_timeout ran out, and
    # nginx would answer every call "no live upstreams" (502) meanwhile. A backup that is really down
    # refuses the connection at once on loopback, and nginx tries the next.
    servers = "\n".join([*(f"        server {address} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s;"
                            for address in upstreams),
                          *(f"        server {address} backup max_fails=0;" for address in upstreams)])
    temp = folder / "temp"
    # Started as root, nginx would hand its workers to `nobody`, who cannot enter a private folder.
    user = "user root;  # workers as the user who started the cluster, so they reach its folder\n" \
        if os.geteuid() == 0 else ""
    return f"""# Written by civicscore.cluster: Debian's nginx in front of {len(upstreams)} civicscore replica(s).
daemon off;          # a child of the process that started it: it stops with it, no stray daemon
master_process on;
worker_processes 1;  # loopback traffic; the cores are the replicas'
{user}pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} notice;
worker_shutdown_timeout {SHUTDOWN_TIMEOUT_S}s;

events {{
    worker_connections 4096;  # each call in flight holds a client and an upstream connection
}}

http {{
    client_body_temp_path {temp / 'body'};
    proxy_temp_path {temp / 'proxy'};
    fastcgi_temp_path {temp / 'fastcgi'};
    uwsgi_temp_path {temp / 'uwsgi'};
    scgi_temp_path {temp / 'scgi'};

    # One JSON line per call: which replica(s) nginx tried, and the gRPC status the call ended with.
    log_format grpc escape=json '{{"time":"$time_iso8601","client":"$remote_addr","method":"$request_uri",'
        '"status":"$status","upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"grpc_status":"$upstream_trailer_grpc_status$upstream_http_grpc_status",'
        '"request_time":"$request_time"}}';
    access_log {folder / 'access.log'} grpc;

    upstream {UPSTREAM} {{
        # Round robin per call (each gRPC call is one HTTP/2 request). A replica whose connection
        # fails is left out for fail_timeout, then tried again.
{servers}
        keepalive 32;              # idle connections kept to the replicas, so calls skip the handshake
        keepalive_requests 100000;
    }}

    server {{
        listen {listen} http2;     # plaintext HTTP/2 (h2c): loopback only, like the replicas
        keepalive_requests 100000;  # nginx's 1,000 would make busy clients reconnect for nothing
        client_max_body_size 0;     # a client stream may carry more than any one message; replicas cap messages
        client_body_timeout {LONG_CALL_TIMEOUT_S}s;  # a client stream may pause between messages
        send_timeout {LONG_CALL_TIMEOUT_S}s;

        location / {{
            grpc_pass grpc://{UPSTREAM};
            grpc_connect_timeout {CONNECT_TIMEOUT_S}s;
            grpc_read_timeout {LONG_CALL_TIMEOUT_S}s;   # a silent replica: a long EvaluatePeriod, an idle watch
            grpc_send_timeout {LONG_CALL_TIMEOUT_S}s;
            # Another replica is tried only when the call never reached one (refused or timed-out
            # connection): gRPC calls are POSTs, which nginx does not resend once sent unless told
            # `non_idempotent`, which is never given here. A call cut after it was sent fails with
            # UNAVAILABLE and the client retries it with its idempotency key.
            grpc_next_upstream error timeout;
            grpc_next_upstream_tries {2 * len(upstreams)};  # the rotation, then the backups
            grpc_next_upstream_timeout {CONNECT_TIMEOUT_S * 2 * len(upstreams) + 1}s;
            # A refusal travels in the response headers (a trailers-only response): its field violations
            # (up to ~7 KB, base64) and message (up to 1,000 characters, percent-encoded) would not fit
            # nginx's 4 KiB default and the client would get UNAVAILABLE ("upstream sent too big header").
            grpc_buffer_size 64k;
            grpc_socket_keepalive on;
            grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;  # the client, for refusal logs
        }}
    }}
}}
"""


@dataclass(frozen=True)
class AccessEntry:
    """One call through nginx, from its access log."""

    method: str  # /civicscore.v1.OutcomeService/SubmitOutcomes
    status: str  # HTTP status to the client (200 for every call a replica answered)
    tried: tuple[str, ...]  # replicas nginx tried, in order (more than one: connection failures)
    upstream_statuses: tuple[str, ...]
    grpc_status: str  # the replica's grpc-status ("" when no replica answered)

    @property
    def answered_by(self) -> str:
        """The replica that answered (the last one tried), or "" if none did."""
        return self.tried[-1] if self.tried and self.upstream_statuses[-1] == "200" else ""


def _split(value: str) -> tuple[str, ...]:
    # nginx separates tries with ", " and upstream groups with " : "
    return tuple(part.strip() for part in value.replace(" : ", ", ").split(",") if part.strip() not in ("", "-"))


class Nginx:
    """nginx in the foreground, with its configuration and files in `folder`."""

    def __init__(self, folder: Path, *, listen: str, upstreams: Sequence[str], binary: str | None = None) -> None:
        self.folder = folder
        self.listen = listen
        self.upstreams = tuple(upstreams)
        self.binary = binary or find_nginx()
        self.config_path = folder / "nginx.conf"
        self.error_log = folder / "error.log"
        self.access_log = folder / "access.log"
        self.output_log = folder / "nginx.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.listen.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def write_config(self) -> None:
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(listen=self.listen, upstreams=self.upstreams, folder=self.folder))

    def _command(self, *extra: str) -> list[str]:
        # -e: the error log before the configuration is read, instead of the compiled-in path.
        return [self.binary, "-p", str(self.folder), "-c", str(self.config_path), "-e", str(self.error_log), *extra]

    def check_config(self) -> None:
        """`nginx -t`: raise RuntimeError with nginx's own words when the configuration is refused."""
        checked = subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused {self.config_path}:\n{checked.stderr.strip()}")

    def start(self, *, timeout_s: float = 30.0) -> Nginx:
        """Write the configuration, check it, start nginx and wait until it accepts connections."""
        if self.running:
            return self
        self.write_config()
        self.check_config()
        with self.output_log.open("ab") as output:
            self.process = subprocess.Popen(self._command(), stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        host, port = self.host_port
        wait_for_port(self.process, host, port, timeout_s=timeout_s, what="nginx", log=self.error_log)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self, *, graceful: bool = True, timeout_s: float = SHUTDOWN_TIMEOUT_S + 10) -> int | None:
        """Stop nginx: gracefully (SIGQUIT: calls in flight finish, up to worker_shutdown_timeout) or at
        once (SIGTERM); SIGKILL to the whole group if it outlives `timeout_s`. The exit code, if it ran."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._kill_group()
        self._kill_group()  # workers left behind by a master that died first
        return process.wait()

    def kill(self) -> None:
        """SIGKILL nginx's master and workers: no connection is closed cleanly."""
        self._kill_group()
        if self.process is not None:
            self.process.wait()

    def _kill_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def reload(self, upstreams: Sequence[str] | None = None, *, timeout_s: float = 30.0) -> None:
        """Rewrite the configuration (new `upstreams`, if given), make nginx load it (SIGHUP) and wait until
        it has: new workers take every new connection, the old ones only finish the calls they hold (up to
        worker_shutdown_timeout); then a moment more (RELOAD_SETTLE_S), for a call an old worker passed on
        just before it began shutting down to reach its replica. Taking a replica out this way before
        stopping it fails no call."""
        if upstreams is not None:
            self.upstreams = tuple(upstreams)
        self.write_config()
        self.check_config()
        if self.process is None or self.process.poll() is not None:
            return
        before = self.workers()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.workers()
            if set(now) - set(before) and all(pid not in now or "shutting down" in now[pid] for pid in before):
                # An old worker may have passed on, with the old upstreams, a call that reached it just before
                # it began shutting down: let such a call reach its replica before anyone stops that replica
                # (a replica that is shutting down refuses a call it has not read yet).
                time.sleep(RELOAD_SETTLE_S)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not load its new configuration within {timeout_s:.0f} s "
                                   f"(workers: {now}):\n{self.error_log_tail()}")
            time.sleep(0.05)

    def workers(self) -> dict[int, str]:
        """nginx's worker processes now: pid -> process title (e.g. "nginx: worker process is shutting down")."""
        if self.process is None:
            return {}
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found: dict[int, str] = {}
        with contextlib.suppress(OSError):
            for pid in map(int, children.read_text().split()):
                with contextlib.suppress(OSError):
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    if "worker process" in title:
                        found[pid] = title
        return found

    def accepting(self) -> bool:
        host, port = self.host_port
        return port_open(host, port)

    def access_entries(self) -> list[AccessEntry]:
        """The calls nginx has logged so far, oldest first (a call is logged when it ends)."""
        try:
            lines = self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                fields = json.loads(line)
            except ValueError:
                continue  # a line being written
            entries.append(AccessEntry(method=fields["method"], status=fields["status"],
                                       tried=_split(fields["upstream"]),
                                       upstream_statuses=_split(fields["upstream_status"]),
                                       grpc_status=fields["grpc_status"]))
        return entries

    def error_log_tail(self, lines: int = 30) -> str:
        return tail(self.error_log, lines)
