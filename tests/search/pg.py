"""A throwaway PostgreSQL server for tests: initdb in a temp dir, loopback only.

PostgreSQL refuses to run as root, so when the tests run as root the server runs
as the unprivileged user ``nobody``. Anything missing (binaries, driver, a user to
run as) makes ``start_postgres`` raise ``PostgresUnavailable`` with the reason, and
the fixture turns that into a pytest skip that says so.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "search-test"
USER = "search"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be installed or started here; the reason is the message."""


@dataclass
class Postgres:
    bin_dir: Path
    data_dir: Path
    port: int
    run_as: list[str]

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def createdb(self, database: str) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname={database}"

    def query(self, database: str, sql: str, *params: object) -> list[tuple]:
        """Read the database directly, not through Optuna: what is really stored."""
        import psycopg

        with psycopg.connect(self.dsn(database)) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir),
                        "-m", "immediate", "-w"], capture_output=True, timeout=60)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        raise PostgresUnavailable("PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib/postgresql)")
    return Path(versions[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> Postgres:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed: pip install -e '.[cluster]'") from None
    bin_dir = _bin_dir()
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:  # postgres refuses to run as root
        import pwd

        try:
            owner = pwd.getpwnam("nobody")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no user 'nobody' to run PostgreSQL as") from None
        run_as = ["runuser", "-u", "nobody", "--"]
    base = Path(tempfile.mkdtemp(prefix="search-pg-"))
    data_dir = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    pwfile.chmod(0o600)

    def run(*cmd: str, timeout: float = 120) -> None:
        out = subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PostgresUnavailable(f"{Path(cmd[0]).name} failed: {tail[0]}")

    run(str(bin_dir / "initdb"), "-D", str(data_dir), "-U", USER, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")
    port = _free_port()
    # fsync off: a test database need not survive a power cut; unix socket in the temp dir
    options = (f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=50")
    run(str(bin_dir / "pg_ctl"), "start", "-D", str(data_dir), "-w", "-t", "60", "-o", options,
        "-l", str(base / "log"))
    server = Postgres(bin_dir, data_dir, port, run_as)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.query("postgres", "SELECT 1")
            return server
        except Exception as exc:  # noqa: BLE001 -- retried, then reported
            if time.monotonic() > deadline:
                server.stop()
                raise PostgresUnavailable(f"PostgreSQL started but does not answer: {exc}") from None
            time.sleep(0.2)
