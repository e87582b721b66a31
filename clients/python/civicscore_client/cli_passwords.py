"""Passwords and sign-in: `civicscore admin password ID`, `civicscore password`, `civicscore sign-in ID`,
`civicscore sign-out`.

A password is read from the terminal without echo (twice when it is a new one), or from standard
input with --password-stdin (one per line: for `password`, the current one, then the new one). It is
never printed, and any message that would contain it shows `[token hidden]` instead.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from civicscore_client._errors import Unauthenticated
from civicscore_client._identities import identity_name
from civicscore_client.cli_admin_remote import _roles, _when
from civicscore_client.cli_session import TOKEN_HELP, Session, message_dict, session_of

PASSWORD_STDIN = typer.Option("--password-stdin", help="Read the password(s) from standard input, one per line, "
                              "instead of the terminal.")


class _Passwords:
    """Reads passwords for one command, from the terminal (no echo) or standard input."""

    def __init__(self, session: Session, from_stdin: bool) -> None:
        self.session = session
        self.from_stdin = from_stdin

    def read(self, prompt: str) -> str:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                self.session.fail(f"standard input ended before the {prompt.lower().rstrip(': ')} "
                                  "(--password-stdin reads one password per line)", code=2)
            value = line.removesuffix("\n").removesuffix("\r")
        else:
            if not sys.stdin.isatty():
                self.session.fail("no terminal to read the password from: give --password-stdin and send it on "
                                  "standard input", code=2)
            value = getpass.getpass(prompt)
        self.session._secrets.append(value)  # hidden from any message, should a server ever echo it
        return value

    def new(self, identity: str) -> str:
        """A new password, typed twice at a terminal (once from standard input)."""
        first = self.read(f"New password for {identity}: ")
        if not self.from_stdin and self.read("The same password again: ") != first:
            self.session.fail("the two passwords differ; nothing was changed", code=2)
        return first


def register_admin(app: typer.Typer) -> None:
    """Add `admin password` to the `admin` sub-app."""

    @app.command("password")
    def password(
        ctx: typer.Context,
        identity: Annotated[str, typer.Argument(help="The identity id.")],
        password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
    ) -> None:
        """Set an identity's password (administrators; for a person who signs in, e.g. on the console).
        At least 12 characters; the server keeps only its argon2id hash."""
        session = session_of(ctx)
        name = identity_name(identity)
        new = _Passwords(session, password_stdin).new(name)
        with session.reporting_errors(), session.connect() as client:
            updated = client.set_password(identity, new)
            if session.json_output:
                session.print_json(message_dict(updated))
                return
            session.out.print(f"password set for {updated.name}; its sign-in sessions have ended; it signs in "
                              f"with `civicscore sign-in {updated.identity_id}`")


def register(app: typer.Typer) -> None:
    """Add `password`, `sign-in` and `sign-out` to the top-level app."""

    @app.command("password")
    def change_password(ctx: typer.Context, password_stdin: Annotated[bool, PASSWORD_STDIN] = False) -> None:
        """Change your own password: the current one, then the new one (twice at a terminal)."""
        session = session_of(ctx)
        with session.reporting_errors(), session.connect() as client:
            me = client.whoami().identity
            passwords = _Passwords(session, password_stdin)
            current = passwords.read(f"Current password of {me.name}: ")
            new = passwords.new(me.name)
            client.set_password(me.identity_id, new, current_password=current)
            if session.json_output:
                session.print_json(message_dict(me))
                return
            session.out.print(f"password changed for {me.name}; its other sign-in sessions have ended")

    @app.command("sign-in")
    def sign_in(
        ctx: typer.Context,
        identity: Annotated[str, typer.Argument(help="The identity to sign in as.")],
        password_stdin: Annotated[bool, PASSWORD_STDIN] = False,
        save: Annotated[Path | None, typer.Option(
            "--save", help="Write the token to this file (readable by you only) instead of standard output.")
        ] = None,
    ) -> None:
        """Sign in with a password for a 12-hour token (printed once, or saved with --save) to use with
        --token-file or CIVICSCORE_TOKEN_FILE."""
        session = session_of(ctx)
        password = _Passwords(session, password_stdin).read(f"Password of {identity_name(identity)}: ")
        anonymous = dataclasses.replace(session, token=None, token_file=None)  # sign-in needs no token
        anonymous._secrets.extend(session._secrets)
        with anonymous.reporting_errors(), anonymous.connect() as client:
            try:
                signed = client.sign_in(identity, password)
            except Unauthenticated as err:
                anonymous.fail(err.message)
            if session.json_output:
                session.print_json({"token": signed.token, "credential": message_dict(signed.credential),
                                    "identity": message_dict(signed.identity)})
                return
            where = "standard output"
            if save is not None:
                _write_secret(session, save, signed.token)
                where = str(save)
            session.err.print(
                f"signed in as {signed.identity.name} (roles {_roles(signed.identity)}) until "
                f"{_when(signed.credential.expire_time)}; the token is in {where}: use it with --token-file FILE or "
                f"CIVICSCORE_TOKEN_FILE, keep it secret; it ends when unused for the server's idle limit (30 "
                f"minutes by default), or with `civicscore --token-file FILE sign-out`", soft_wrap=True)
            if save is None:
                session.out.file.write(signed.token + "\n")

    @app.command("sign-out")
    def sign_out(
        ctx: typer.Context,
        keep_token_file: Annotated[bool, typer.Option(
            "--keep-token-file", help="Leave the token file in place (it holds a token that no longer works).")
        ] = False,
    ) -> None:
        """End the sign-in session whose token this command is given (--token-file FILE, as `sign-in --save
        FILE` wrote it, or CIVICSCORE_TOKEN_FILE): the token stops working at once. The token file is then
        removed, unless --keep-token-file. Tokens an administrator issued are not ended this way."""
        session = session_of(ctx)
        if session.token is None and session.token_file is None:
            session.fail(f"nothing to sign out of: give the session's token with {TOKEN_HELP} (the file "
                         "`civicscore sign-in ID --save FILE` wrote)", code=2)
        from_file = session.token is None  # --token / CIVICSCORE_TOKEN win over the file when both are given
        token = session.read_token()  # the token signed out: the file is removed only if it still holds it
        with session.reporting_errors(), session.connect() as client:
            ended = client.sign_out()
        removed = None
        if from_file and not keep_token_file and session.token_file is not None:
            removed = _remove_token_file(session, session.token_file, token)
        if session.json_output:
            session.print_json({"credential": message_dict(ended), "token_file_removed": str(removed or "")})
            return
        words = f"signed out: the session {ended.name} has ended; its token no longer works"
        if removed is not None:
            words += f"; removed the token file {removed}"
        elif not from_file:
            words += "; stop passing it (--token / CIVICSCORE_TOKEN)"
        session.out.print(words, soft_wrap=True)


def _remove_token_file(session: Session, path: Path, token: str | None) -> Path | None:
    """Remove the token file if it still holds `token` (the one signed out); the path removed, or None."""
    try:
        held = path.expanduser().read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if held != token:
        session.warn(f"the token file {path} now holds another token: left in place")
        return None
    try:
        path.expanduser().unlink()
    except OSError as error:
        session.warn(f"cannot remove the token file {path} ({error.strerror}): delete it yourself; the token in it "
                     "no longer works")
        return None
    return path


def _write_secret(session: Session, path: Path, secret: str) -> None:
    """Write `secret` to `path`, readable by this user only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
        os.chmod(path, 0o600)
    except OSError as error:
        session.fail(f"cannot write the token to {path}: {error.strerror}", code=2)
