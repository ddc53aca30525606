"""A throwaway PostgreSQL server for tests: initdb into a temp dir, 127.0.0.1 on a free port, then deleted.

Uses the server binaries of Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin).
initdb and the server refuse to run as root, so under root they run as the unprivileged `postgres`
user the package creates, in a temp dir handed over to it; clients (psql, pg_dump) run as the caller.
Unix sockets stay inside the temp dir (trust, for the admin connection only); TCP on 127.0.0.1
requires the password of the one role the tests use.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

PG_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "install them with `apt-get install -y postgresql` (Debian/Ubuntu; .ci/run does this in CI)"
ADMIN = "admin"  # the cluster's superuser, reachable only through the socket in the temp dir
ROLE = "pulumi_state"  # the role the state backend logs in as, with a password, over TCP
TIMEOUT = 60  # seconds for any one server command
PSQL = ("-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-f", "-")  # SQL on stdin; bare rows out


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl, psql and pg_dump; None if absent."""
    found = [
        path.parent
        for path in PG_ROOT.glob("*/bin/initdb")
        if all((path.parent / tool).exists() for tool in ("pg_ctl", "postgres", "psql", "pg_dump"))
    ]
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0], default=None)


def missing_reason() -> str | None:
    """Why the server cannot be started here, with the fix; None when it can."""
    if find_bin_dir() is None:
        return f"PostgreSQL server binaries not found under {PG_ROOT}/*/bin: {INSTALL_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return f"running as root needs the unprivileged `postgres` user to run the server: {INSTALL_HINT}"
    return None


def _ephemeral_floor() -> int | None:
    """The lowest port the kernel hands out for `bind(0)` and outgoing connections; None if unknown."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _free_port() -> int:
    """A free port on 127.0.0.1 for the server, below the kernel's ephemeral range where there is one.

    The server keeps its port across a restart (the backend URLs hold it). Tests in parallel processes
    bind port 0 and open connections all the time: an ephemeral port could be taken while the server is
    stopped, one below the range is never handed out by the kernel.
    """
    floor = _ephemeral_floor()
    candidates = [secrets.choice(range(20_000, floor)) for _ in range(50)] if floor and floor > 21_000 else []
    for port in [*candidates, 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


class PostgresServer:
    """One throwaway cluster. `start()`, `stop()` and `start()` again (same port), `close()` deletes it all."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise RuntimeError(missing_reason() or "no PostgreSQL binaries")
        self.bin_dir = found
        self.password = "pw-" + secrets.token_hex(12)  # random: tests search every output for it
        self.host = "127.0.0.1"
        self.port = 0
        self.dir = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.dir / "data"
        self.sockets = self.dir / "sockets"
        self.log = self.dir / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse root: hand the temp dir to `postgres`
            self._user = "postgres"
            owner = pwd.getpwnam(self._user)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self._env["LC_ALL"] = "C"
        self.outputs: list[str] = []  # everything the server's commands printed, for the secret audit

    # -- the server's lifecycle --------------------------------------------------------------

    def create(self) -> Self:
        """initdb, a free port on 127.0.0.1, start, and the password role; cleans up if any step fails."""
        try:
            self._as_server_user("mkdir", "-m", "0700", str(self.sockets))
            with tempfile.NamedTemporaryFile("w", dir=self.dir, delete=False) as pwfile:
                pwfile.write(secrets.token_hex(16))  # the superuser's: unused (socket trust), but never empty
            if self._user:
                owner = pwd.getpwnam(self._user)
                os.chown(pwfile.name, owner.pw_uid, owner.pw_gid)
            self._as_server_user(
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                ADMIN,
                f"--pwfile={pwfile.name}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            )
            os.unlink(pwfile.name)
            self.port = _free_port()
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.sockets}'",
                "fsync": "off",  # a crash of the machine may lose it all; a crash of the server loses nothing
                "shared_buffers": "16MB",
                "max_connections": "40",
                "log_connections": "off",
            }
            conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
            self._as_server_user("sh", "-c", f'cat >> "{self.data}/postgresql.conf"', stdin=conf)
            self.start()
            self.admin_sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        except BaseException:
            self.close()
            raise
        return self

    def start(self) -> None:
        self._as_server_user(
            str(self.bin_dir / "pg_ctl"), "start", "--pgdata", str(self.data), "--log", str(self.log), "--wait"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (what a restart does: clients are disconnected) or `immediate` (a crash)."""
        self._as_server_user(str(self.bin_dir / "pg_ctl"), "stop", "--pgdata", str(self.data), "--mode", mode, "--wait")

    def running(self) -> bool:
        return self._server_command(str(self.bin_dir / "pg_ctl"), "status", "--pgdata", str(self.data)).returncode == 0

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        """Stop the server if it runs, and delete its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.create()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- databases and clients -----------------------------------------------------------------

    def create_database(self, name: str) -> None:
        """A database owned by the state role (so the backend can create its table)."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
        self.admin_sql(f"CREATE DATABASE {name} OWNER {ROLE}")

    def url(self, database: str, *, password: bool = True, **params: str) -> str:
        """postgres://pulumi_state[:password]@127.0.0.1:port/database?sslmode=disable[&params]."""
        query = "&".join(f"{k}={v}" for k, v in {"sslmode": "disable", **params}.items())
        auth = f"{ROLE}:{self.password}" if password else ROLE
        return f"postgres://{auth}@{self.host}:{self.port}/{database}?{query}"

    def admin_sql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through the socket; returns psql's unaligned output."""
        result = subprocess.run(
            [self._client("psql"), "-h", str(self.sockets), "-p", str(self.port), "-U", ADMIN, "-d", database, *PSQL],
            input=sql,  # on stdin, not the command line: the role's password stays out of `ps`
            env=self._env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def dump(self, database: str) -> str:
        """`pg_dump` of a database over TCP as the state role: what a backup of it would hold."""
        result = subprocess.run(
            [self._client("pg_dump"), "-h", self.host, "-p", str(self.port), "-U", ROLE, "-w", "-d", database],
            env={**self._env, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    # -- running server commands as the right user -------------------------------------------

    def _client(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _server_command(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a server command as the server's user (under root: `postgres`) in the temp dir."""
        result = subprocess.run(
            list(argv),
            input=stdin,
            env=self._env,
            cwd=self.dir,
            user=self._user,
            group="postgres" if self._user else None,
            extra_groups=[] if self._user else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        return result

    def _as_server_user(self, *argv: str, stdin: str | None = None) -> None:
        result = self._server_command(*argv, stdin=stdin)
        if result.returncode != 0:
            log = self.server_log()[-2000:]
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}\n{log}".rstrip()
            )
