"""Benchmark: the payment pull costs what changed in Sage, not what was pushed.

Two scenarios against the project's Sage sandbox, each with 100 invoices paid
in Sage since the last pull:

* 1,000 invoices pushed to Sage (and linked in Odoo),
* 10,000 invoices pushed.

For one pull of each it prints the Sage calls (by route), the Odoo wall time
of the pull, the SQL queries it ran, and the ratios between the two. The
10,000 case should need the same Sage calls (3: invoices, receipts and
allocations changed since the watermark, one page each) and about the same
Odoo time: the pull never loops over the pushed invoices.

How to run (Odoo 18 importable, PostgreSQL reachable)::

    cd /work/main
    PYTHONPATH=/work/main python3 bench/bench_payment_pull.py \\
        --db-host 127.0.0.1 --db-user root

Without ``--db`` a throwaway database is copied from ``--template`` (default
``sage_base``: Odoo with ``account`` installed), the addon is installed into
it (about a minute), the benchmark runs, and the database is dropped
(``--keep`` keeps it). With ``--db NAME``, NAME must already have
``sage_one_connector`` installed; nothing is committed there (the
benchmark's records are rolled back).

The invoices are "pushed" without the Send-to-Sage code: the sandbox store is
seeded in Python (backdated one day, so that only the 100 payments fall
within the pull window) and the Odoo moves are cloned from one draft invoice
with a single INSERT, carrying ``sage_id``, ``sage_state = 'sent'`` and the
connection. ``--repeat`` pulls each scenario several times (rolled back in
between) and reports the median.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"  # a sandbox-only credential
CHANGED = 100
SIZES = (1_000, 10_000)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="existing database with sage_one_connector installed")
    parser.add_argument("--template", default="sage_base", help="template of the throwaway DB")
    parser.add_argument("--db-host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--db-port", default=os.environ.get("PGPORT", "5432"))
    parser.add_argument("--db-user", default=os.environ.get("PGUSER", "root"))
    parser.add_argument("--db-password", default=os.environ.get("PGPASSWORD"))
    parser.add_argument("--repeat", type=int, default=3, help="pulls per scenario (median)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    return parser.parse_args(argv)


def odoo_args(args, db):
    out = [
        f"--db_host={args.db_host}",
        f"--db_port={args.db_port}",
        f"--db_user={args.db_user}",
        f"--addons-path={REPO_ROOT}",
        f"--database={db}",
        "--max-cron-threads=0",
        "--without-demo=all",
        "--log-level=warn",
    ]
    if args.db_password:
        out.append(f"--db_password={args.db_password}")
    return out


def pg_env(args):
    env = dict(os.environ, PGHOST=args.db_host, PGPORT=str(args.db_port), PGUSER=args.db_user)
    if args.db_password:
        env["PGPASSWORD"] = args.db_password
    return env


def create_database(args):
    db = f"sage_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", "-T", args.template, db], check=True, env=pg_env(args))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    print(f"Installing sage_one_connector in throwaway database {db} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            *odoo_args(args, db),
            "-i",
            "sage_one_connector",
            "--stop-after-init",
            f"--http-port={port}",
        ],
        check=True,
        env=dict(pg_env(args), PYTHONPATH=REPO_ROOT),
    )
    return db


def drop_database(args, db):
    subprocess.run(["dropdb", "--if-exists", db], check=False, env=pg_env(args))


# ----------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------
def seed_sage(sandbox, business_id, count):
    """`count` live invoices in the sandbox store, backdated one day. Returns ids."""
    state = sandbox.state
    with sandbox.lock:
        contact = state.create_contact(
            business_id, {"name": "Bench Customer", "contact_type_ids": ["CUSTOMER"]}
        )
        ledger = state.ledger_by_nominal(business_id, 4000)
        ids = []
        for index in range(count):
            invoice = state.create_artefact(
                "sales_invoices",
                business_id,
                {
                    "contact_id": contact["id"],
                    "date": "2026-01-15",
                    "reference": f"BENCH/{index}",
                    "invoice_lines": [
                        {
                            "description": "Bench line",
                            "ledger_account_id": ledger["id"],
                            "quantity": 1,
                            "unit_price": "100.0",
                            "tax_rate_id": "GB_ZERO",
                            "tax_amount": "0",
                        }
                    ],
                },
            )
            ids.append(invoice["id"])
        # Pushed long before the last pull: outside the pull window.
        yesterday = state.now() - timedelta(days=1)
        for collection in ("contacts", "sales_invoices", "transactions"):
            for record in state.collection(collection, business_id):
                record["created_at"] = record["updated_at"] = yesterday
    return ids


def seed_odoo(env, connection, sage_ids):
    """One draft invoice by the ORM, cloned per Sage id with a single INSERT."""
    template = env["account.move"].create(
        {
            "move_type": "out_invoice",
            "partner_id": env["res.partner"].create({"name": "Bench Customer"}).id,
            "sage_state": "sent",
            "sage_connection_id": connection.id,
            "sage_payment_status": "unpaid",
            "sage_outstanding_amount": 100.0,
        }
    )
    env.flush_all()
    cr = env.cr
    cr.execute(
        """SELECT column_name FROM information_schema.columns
           WHERE table_name = 'account_move' AND column_name NOT IN ('id', 'sage_id')"""
    )
    columns = [row[0] for row in cr.fetchall()]
    column_list = ", ".join(f'"{name}"' for name in columns)
    cr.execute(
        f"""INSERT INTO account_move ({column_list}, sage_id)
            SELECT {column_list}, sid FROM account_move, unnest(%s::varchar[]) AS sid
            WHERE account_move.id = %s""",  # column names come from the catalog, not input
        [list(sage_ids), template.id],
    )
    template.unlink()
    env.invalidate_all()


# ----------------------------------------------------------------------------
# Scenario
# ----------------------------------------------------------------------------
def run_scenario(env, sandbox, connection, user_id, size, repeat):
    from odoo import fields

    business_id = sandbox.add_business(user_id, f"Bench {size}")
    started = time.monotonic()
    sage_ids = seed_sage(sandbox, business_id, size)
    connection.write({"business_id": business_id})
    seed_odoo(env, connection, sage_ids)
    seeded_in = time.monotonic() - started
    # The last successful pull ran after everything was pushed...
    connection.write({"sage_payments_pulled_until": fields.Datetime.now()})
    # ... and since then 100 invoices were paid in Sage.
    step = max(1, size // CHANGED)
    paid = sage_ids[::step][:CHANGED]
    with sandbox.lock:
        for sage_id in paid:
            sandbox.state.record_payment(sage_id, "100.0")
    env.flush_all()
    runs = []
    for _index in range(repeat):
        sandbox.reset_stats()
        with discarded(env), timed_sage_requests() as in_sage:  # pulled again next run
            queries_before = env.cr.sql_log_count
            started = time.monotonic()
            stats = connection._sage_as_system()._sage_pull_payments()
            env.flush_all()
            elapsed = time.monotonic() - started
            queries = env.cr.sql_log_count - queries_before
            paid_in_odoo = env["account.move"].search_count(
                [("sage_connection_id", "=", connection.id), ("sage_payment_status", "=", "paid")]
            )
        runs.append(
            {
                "seconds": elapsed,
                "sage_seconds": in_sage["seconds"],
                "queries": queries,
                "sage_calls": stats["sage_calls"],
                "by_route": sandbox.stats()["by_route"],
                "changes": stats["changes_in_sage"],
                "updated": stats["updated"],
                "paid_in_odoo": paid_in_odoo,
            }
        )
    pushed = env["account.move"].search_count([("sage_connection_id", "=", connection.id)])
    return {
        "size": size,
        "pushed": pushed,
        "seeded_in": seeded_in,
        "seconds": statistics.median(run["seconds"] for run in runs),
        "sage_seconds": statistics.median(run["sage_seconds"] for run in runs),
        "odoo_seconds": statistics.median(run["seconds"] - run["sage_seconds"] for run in runs),
        "queries": statistics.median(run["queries"] for run in runs),
        "sage_calls": runs[-1]["sage_calls"],
        "by_route": runs[-1]["by_route"],
        "changes": runs[-1]["changes"],
        "updated": runs[-1]["updated"],
        "paid_in_odoo": runs[-1]["paid_in_odoo"],
    }


def main(argv=None):
    args = parse_args(argv)
    import odoo
    from odoo import SUPERUSER_ID, api
    from odoo.modules.registry import Registry

    from sage_sandbox import SageSandbox

    # The sandbox speaks plain http on 127.0.0.1: oauthlib allows that only when told.
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    db = args.db or create_database(args)
    try:
        odoo.tools.config.parse_config(odoo_args(args, db))
        registry = Registry(db)
        sandbox = SageSandbox(access_token_ttl=3600).start()
        try:
            sandbox.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=["http://localhost/cb"])
            user = sandbox.add_user(
                email="bench@sage-test.example",
                businesses=[{"name": "Bench", "country": "GB", "subscription": "ACCOUNTING"}],
            )
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                results = run_all(env, sandbox, user["user_id"], args.repeat)
                cr.rollback()
        finally:
            sandbox.stop()
    finally:
        # Release the pooled connections, or PostgreSQL refuses to drop the database.
        odoo.sql_db.close_all()
        if not args.db and not args.keep:
            drop_database(args, db)
    report(results, args.repeat)


def run_all(env, sandbox, user_id, repeat):
    company = env.company
    Connection = env["sage.connection"]
    connection = Connection._for_company(company, raise_if_missing=False)
    values = {
        "api_url": sandbox.api_url,
        "authorize_url": sandbox.authorize_url,
        "token_url": sandbox.token_url,
        "revoke_url": sandbox.revoke_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "business_name": "Bench",
        "state": "connected",
        "sage_register_payments": False,
    }
    if connection:
        connection.write(values)
    else:
        connection = Connection.create({"company_id": company.id, **values})
    token = sandbox.issue_tokens(CLIENT_ID, user_id=user_id)
    now = time.time()
    token.update(
        expires_at=now + token["expires_in"],
        refresh_token_expires_at=now + token["refresh_token_expires_in"],
    )
    connection._sage_store_token(token)
    results = []
    for size in SIZES:
        with discarded(env):  # each scenario starts from the same Odoo state
            results.append(run_scenario(env, sandbox, connection, user_id, size, repeat))
    return results


class _Discard(Exception):
    pass


@contextmanager
def discarded(env):
    """Run the block in a savepoint that is always rolled back."""
    try:
        with env.cr.savepoint():
            yield
            env.flush_all()
            raise _Discard
    except _Discard:
        pass
    env.invalidate_all()


def report(results, repeat):
    print()
    print(f"One payment pull, {CHANGED} invoices paid in Sage since the last pull")
    print(f"(median of {repeat} pulls; the sandbox runs in this process on 127.0.0.1)")
    print()
    columns = (
        ("pushed", 8),
        ("Sage calls", 10),
        ("pull s", 8),
        ("in Sage s", 9),
        ("Odoo s", 8),
        ("SQL", 5),
        ("changed", 7),
        ("updated", 7),
        ("seeded s", 8),
    )
    header = " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['pushed']:>8,} {row['sage_calls']:>10} {row['seconds']:>8.3f} "
            f"{row['sage_seconds']:>9.3f} {row['odoo_seconds']:>8.3f} {row['queries']:>5.0f} "
            f"{row['changes']:>7} {row['updated']:>7} {row['seeded_in']:>8.1f}"
        )
    print()
    for row in results:
        routes = ", ".join(f"{route} x{count}" for route, count in sorted(row["by_route"].items()))
        print(f"{row['pushed']:>8,} pushed: {routes}")
    small, large = results[0], results[-1]
    print()
    print(
        f"Ratio {large['pushed']:,} / {small['pushed']:,} pushed invoices "
        f"(x{large['pushed'] / small['pushed']:.0f}): "
        f"Sage calls x{large['sage_calls'] / small['sage_calls']:.2f}, "
        f"Odoo time x{large['odoo_seconds'] / small['odoo_seconds']:.2f}, "
        f"SQL queries x{large['queries'] / small['queries']:.2f} "
        f"(whole pull x{large['seconds'] / small['seconds']:.2f})"
    )
    print(
        "pull s: wall time of the pull; in Sage s: waiting for the sandbox (its Python "
        "filters every stored invoice per request); Odoo s: the difference."
    )
    ok = large["sage_calls"] <= 3 and large["updated"] == CHANGED
    print(f"Target (<= 3 Sage calls, {CHANGED} invoices updated):", "met" if ok else "NOT met")


@contextmanager
def timed_sage_requests():
    """Time spent inside SageClient.request (bench instrumentation only)."""
    from odoo.addons.sage_one_connector.sage_api.client import SageClient

    spent = {"seconds": 0.0}
    original = SageClient.request

    def request(self, *args, **kwargs):
        started = time.monotonic()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent["seconds"] += time.monotonic() - started

    SageClient.request = request
    try:
        yield spent
    finally:
        SageClient.request = original


if __name__ == "__main__":
    main()
