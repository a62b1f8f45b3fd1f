"""Real Odoo server processes, their databases and JSON-RPC, for the system tests.

Everything here talks to Odoo the way an outside client or an operator does:
``python3 -m odoo`` as a subprocess, HTTP JSON-RPC (``/jsonrpc``), SQL reads,
``createdb``/``dropdb``, and signals (SIGKILL to simulate a crash).

Every database and process created here is registered, so that the pytest
session (and ``scripts/test_system.sh`` after it) can remove them:
``SAGE_SYSTEM_PIDFILE`` receives the pid of each Odoo process started.
"""

import getpass
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg2
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = REPO_ROOT / "test-output" / "system"
PYTHON = os.environ.get("PYTHON") or sys.executable

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER") or getpass.getuser(),
    "password": os.environ.get("PGPASSWORD") or None,
}
ADMIN_LOGIN = ADMIN_PASSWORD = "admin"  # what Odoo gives a new database


class SystemTestError(AssertionError):
    """A system test found the product in a wrong state (a failure, not an error)."""


def require(condition, message):
    """Skip the test when ``condition`` is false, unless ``CI=true``: then fail it."""
    import pytest

    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


# ----------------------------------------------------------------------------
# Ports, processes, databases
# ----------------------------------------------------------------------------
def free_port():
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register_pid(pid):
    pidfile = os.environ.get("SAGE_SYSTEM_PIDFILE")
    if pidfile:
        with open(pidfile, "a", encoding="utf-8") as handle:
            handle.write(f"{pid}\n")


def odoo_db_args(db):
    args = [
        f"--db_host={PG['host']}",
        f"--db_port={PG['port']}",
        f"--db_user={PG['user']}",
        f"--addons-path={REPO_ROOT}",
        "-d",
        db,
    ]
    if PG["password"]:
        args.append(f"--db_password={PG['password']}")
    return args


def odoo_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # The sandbox speaks plain http on loopback; oauthlib refuses that unless told.
    env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    return env


def pg_connect(db):
    connection = psycopg2.connect(
        dbname=db,
        host=PG["host"],
        port=PG["port"],
        user=PG["user"],
        password=PG["password"],
    )
    connection.autocommit = True
    return connection


def sql(db, query, params=None):
    """Rows of ``query`` in ``db`` (a fresh connection: reads committed data)."""
    with closing(pg_connect(db)) as connection, connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def database_exists(db):
    return bool(sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [db]))


def _pg_command(*args):
    env = dict(os.environ, PGHOST=PG["host"], PGPORT=str(PG["port"]), PGUSER=PG["user"])
    if PG["password"]:
        env["PGPASSWORD"] = PG["password"]
    subprocess.run(args, check=True, env=env, capture_output=True, text=True)


def create_database(db, template=None):
    args = ["createdb", db] if not template else ["createdb", "-T", template, db]
    _pg_command(*args)


def drop_database(db):
    # Connections of killed servers are gone; connections of live ones must be too.
    sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        [db],
    )
    _pg_command("dropdb", "--if-exists", db)


def copy_filestore(template, db):
    """A database copy needs its filestore (attachments such as asset bundles)."""
    root = Path(os.environ.get("ODOO_DATA_DIR") or Path.home() / ".local/share/Odoo")
    source = root / "filestore" / template
    if source.is_dir():
        subprocess.run(["cp", "-a", str(source), str(root / "filestore" / db)], check=True)


def drop_filestore(db):
    root = Path(os.environ.get("ODOO_DATA_DIR") or Path.home() / ".local/share/Odoo")
    target = root / "filestore" / db
    if target.is_dir() and target.name == db:
        subprocess.run(["rm", "-rf", str(target)], check=True)


def run_odoo_command(db, args, log_path, timeout=1800):
    """``python3 -m odoo <db args> <args>`` to completion; raise with the log tail on error."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.run(
            [PYTHON, "-m", "odoo", *odoo_db_args(db), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=odoo_env(),
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )
    if process.returncode:
        tail = "".join(log_path.read_text(encoding="utf-8").splitlines(True)[-40:])
        raise RuntimeError(f"odoo {' '.join(args)} failed ({process.returncode}):\n{tail}")
    return log_path


def run_odoo_script(db, script, script_args, log_path, timeout=900):
    """Run a Python script of system_tests/ that loads the Odoo registry of ``db``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.run(
            [PYTHON, str(Path(__file__).parent / script), *odoo_db_args(db), *script_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=odoo_env(),
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )
    output = log_path.read_text(encoding="utf-8")
    if process.returncode:
        raise RuntimeError(f"{script} failed ({process.returncode}):\n{output[-4000:]}")
    return output


class OdooServer:
    """One ``python3 -m odoo`` server process on ``db``, restartable after a kill."""

    _numbers = itertools.count(1)

    def __init__(self, db, name="odoo", cron_threads=1, extra_args=()):
        self.db = db
        self.port = free_port()
        self.name = name
        self.cron_threads = cron_threads
        self.extra_args = list(extra_args)
        self.process = None
        self.starts = 0
        self.log_path = OUTPUT_DIR / f"{db}-{name}-{next(self._numbers)}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self, timeout=180):
        assert not self.alive(), "already running"
        self.starts += 1
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"\n===== start #{self.starts} =====\n")
            log.flush()
            self.process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "odoo",
                    *odoo_db_args(self.db),
                    f"--db-filter=^{self.db}$",
                    f"--http-port={self.port}",
                    "--http-interface=127.0.0.1",
                    f"--max-cron-threads={self.cron_threads}",
                    "--log-level=info",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=odoo_env(),
                cwd=REPO_ROOT,
                start_new_session=True,  # its own process group: signals reach it alone
            )
        register_pid(self.process.pid)
        self.wait_ready(timeout)
        return self

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/web/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    def kill(self):
        """SIGKILL, as the kernel's OOM killer or a pulled plug would."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process:
            self.process.wait(timeout=30)

    def stop(self):
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def wake_cron(db):
    """What Odoo's ``ir.cron._trigger`` sends after its commit: NOTIFY cron_trigger.

    The cron thread of a server that just started sleeps up to 60 s before its
    first look at the jobs; this wakes it early. It adds no work: the cron only
    runs jobs that the database says are due (a trigger or a past nextcall).
    """
    sql("postgres", "SELECT pg_notify('cron_trigger', %s)", [db])


# ----------------------------------------------------------------------------
# JSON-RPC
# ----------------------------------------------------------------------------
class RpcError(Exception):
    def __init__(self, error):
        data = error.get("data") or {}
        self.name = data.get("name") or ""
        self.message = data.get("message") or error.get("message") or str(error)
        super().__init__(f"{self.name}: {self.message}")


class OdooRpc:
    """``/jsonrpc`` ``object.execute_kw`` as one user: stateless, survives restarts."""

    def __init__(self, server, login=ADMIN_LOGIN, password=ADMIN_PASSWORD):
        self.server = server
        self.login = login
        self.password = password
        self.session = requests.Session()
        self._uid = None
        self._ids = itertools.count(1)

    def _call(self, service, method, *args, timeout=300):
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(self._ids),
            "params": {"service": service, "method": method, "args": list(args)},
        }
        response = self.session.post(
            f"{self.server.url}/jsonrpc",
            data=json.dumps(payload),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            raise RpcError(body["error"])
        return body.get("result")

    @property
    def uid(self):
        if self._uid is None:
            self._uid = self._call(
                "common", "authenticate", self.server.db, self.login, self.password, {}
            )
            if not self._uid:
                raise RpcError({"message": f"login {self.login} refused"})
        return self._uid

    def call(self, model, method, *args, context=None, timeout=300, **kwargs):
        if context is not None:
            kwargs["context"] = context
        return self._call(
            "object",
            "execute_kw",
            self.server.db,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kwargs,
            timeout=timeout,
        )

    def search_read(self, model, domain, fields, **kwargs):
        return self.call(model, "search_read", domain, fields, **kwargs)


# ----------------------------------------------------------------------------
# Waiting
# ----------------------------------------------------------------------------
def wait_until(condition, timeout, what, poke=None, interval=0.02, poke_every=1.0):
    """Return ``condition()``'s first truthy value; call ``poke`` every ``poke_every`` s."""
    deadline = time.monotonic() + timeout
    next_poke = 0.0
    while True:
        value = condition()
        if value:
            return value
        now = time.monotonic()
        if now > deadline:
            raise SystemTestError(f"timed out after {timeout:.0f}s waiting for {what}")
        if poke and now >= next_poke:
            poke()
            next_poke = now + poke_every
        time.sleep(interval)
