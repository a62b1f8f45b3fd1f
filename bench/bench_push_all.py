"""Benchmark: Push all to Sage (the background batch runner) against the Sage sandbox.

Three scenarios, each a real batch queued like the wizard's Push Now and
processed by the runner cron's method (``sage.push.batch._cron_sage_push``)
chunk by chunk, exactly as the cron calls it, with its commits:

1. **Calls and Odoo time** - 500 invoices for 50 customers new to Sage,
   sandbox latency 0. Prints the Sage calls per pushed invoice (target
   <= 1.2: one POST per invoice plus one search and one creation per new
   customer) and the Odoo-side milliseconds per invoice (target <= 20): the
   runner's wall time minus the time its thread is blocked waiting for Sage
   (for the concurrent requests, and in its own HTTP calls for contacts).
2. **Throughput** - 1,000 invoices for 50 new customers with 200 ms sandbox
   latency per request: wall time (target <= 60 s). Beside it, the serial
   figure of the same runner with one request at a time and no overlap
   (``max_concurrency = 1``, one chunk per call), measured on a smaller sample
   in the same run and extrapolated to 1,000 invoices (the output says so).
3. **Memory** - 10,000 invoices, latency 0: the process's resident memory
   after each runner call. For this scenario the sandbox runs in a child
   process (it stores every document it receives, as Sage does), so the
   figure is Odoo's alone; it must stay bounded (flat after the first chunks),
   not grow with the number of invoices.

Every scenario checks that each invoice is in Sage exactly once.

How to run (Odoo 18 importable, PostgreSQL reachable)::

    cd /work/main
    PYTHONPATH=/work/main python3 bench/bench_push_all.py --db-host 127.0.0.1 --db-user root

Without ``--db`` a throwaway database is copied from ``--template`` (default
``sage_base``: Odoo with ``account`` installed, a chart on the main company),
the addon is installed into it (about a minute), the scenarios run, and the
database is dropped (``--keep`` keeps it). The runner COMMITS (as in
production), so ``--db NAME`` writes invoices and batches into NAME: use a
throwaway database that has ``sage_one_connector`` installed. The sandbox runs
in this process on 127.0.0.1. Smaller runs: ``--calls-invoices 100
--latency-invoices 200 --memory-invoices 0`` (0 skips a scenario).
The whole default run takes 10-20 minutes on two cores, most of it creating
and posting the 11,500 invoices.
"""

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"  # a sandbox-only credential
QUIET_CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_notrack": True}
CREATE_BATCH = 250


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="existing throwaway database with sage_one_connector")
    parser.add_argument("--template", default="sage_base", help="template of the throwaway DB")
    parser.add_argument("--db-host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--db-port", default=os.environ.get("PGPORT", "5432"))
    parser.add_argument("--db-user", default=os.environ.get("PGUSER", "root"))
    parser.add_argument("--db-password", default=os.environ.get("PGPASSWORD"))
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    parser.add_argument("--chunk-size", type=int, default=100, help="documents per unit of work")
    parser.add_argument("--concurrency", type=int, default=8, help="connection.max_concurrency")
    parser.add_argument("--calls-invoices", type=int, default=500)
    parser.add_argument("--calls-customers", type=int, default=50)
    parser.add_argument("--latency-invoices", type=int, default=1000)
    parser.add_argument("--latency-customers", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2, help="sandbox seconds per request")
    parser.add_argument("--serial-sample", type=int, default=50, help="invoices pushed serially")
    parser.add_argument("--memory-invoices", type=int, default=10_000)
    parser.add_argument("--memory-customers", type=int, default=200)
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


class ChildSandbox:
    """A SageSandbox in a child process, driven through a pipe.

    Used by the memory scenario: the sandbox keeps every document it receives
    (as Sage does), and in this process that would hide Odoo's own figure.
    Offers the few members the benchmark uses.
    """

    def __init__(self, **options):
        context = multiprocessing.get_context("fork")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_child_sandbox, args=(child_end, options), daemon=True
        )
        self._process.start()
        urls = self._call("_urls")
        self.api_url, self.authorize_url, self.token_url, self.revoke_url = urls

    def _call(self, name, *args, **kwargs):
        self._pipe.send((name, args, kwargs))
        ok, value = self._pipe.recv()
        if not ok:
            raise RuntimeError(f"sandbox {name}: {value}")
        return value

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)

    def stop(self):
        if self._process.is_alive():
            self._call("_stop")
            self._process.join(timeout=30)


def _child_sandbox(pipe, options):
    from sage_sandbox import SageSandbox

    sandbox = SageSandbox(**options).start()
    while True:
        name, args, kwargs = pipe.recv()
        try:
            if name == "_urls":
                value = (
                    sandbox.api_url,
                    sandbox.authorize_url,
                    sandbox.token_url,
                    sandbox.revoke_url,
                )
            elif name == "_stop":
                sandbox.stop()
                pipe.send((True, None))
                return
            elif name == "references":
                value = references(sandbox, *args)
            else:
                value = getattr(sandbox, name)(*args, **kwargs)
            pipe.send((True, value))
        except Exception as error:  # reported to the benchmark, which stops
            pipe.send((False, repr(error)))


def references(sandbox, business_id):
    """References of the sales invoices of a sandbox business."""
    with sandbox.lock:
        return [
            record.get("reference")
            for record in sandbox.state.collection("sales_invoices", business_id)
        ]


def rss_mb():
    """Resident memory of this process, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------
# Instrumentation (bench only)
# ----------------------------------------------------------------------------
@contextmanager
def time_in_sage():
    """Time the runner's thread spends waiting for Sage.

    The runner overlaps the sending of one chunk with the ORM work on the
    next and previous ones, so what is not Odoo's is the time this thread is
    blocked: waiting for a chunk's sends, for the concurrent contact searches,
    and in its own HTTP calls (contact creations, token renewals).
    """
    from odoo.addons.sage_one_connector.sage_api import push_batch
    from odoo.addons.sage_one_connector.sage_api.client import SageClient

    spent = {"waiting_for_sends": 0.0, "main_thread_http": 0.0}
    main = threading.main_thread()
    originals = (
        SageClient.request,
        push_batch.SendHandle.wait,
        push_batch.ConcurrentSender.prefetch,
    )

    def timed(function, key, main_thread_only=False):
        def wrapper(*args, **kwargs):
            if main_thread_only and threading.current_thread() is not main:
                return function(*args, **kwargs)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - started

        return wrapper

    SageClient.request = timed(originals[0], "main_thread_http", main_thread_only=True)
    push_batch.SendHandle.wait = timed(originals[1], "waiting_for_sends")
    push_batch.ConcurrentSender.prefetch = timed(originals[2], "waiting_for_sends")
    try:
        yield spent
    finally:
        (
            SageClient.request,
            push_batch.SendHandle.wait,
            push_batch.ConcurrentSender.prefetch,
        ) = originals


# ----------------------------------------------------------------------------
# Setup
# ----------------------------------------------------------------------------
def setup_company(env, sandbox, user_id):
    """Connect the main company to the sandbox; GBP invoices with a mapped 20% VAT."""
    company = env.company
    gbp = env.ref("base.GBP")
    if not gbp.active:
        gbp.active = True
    if not env["res.currency.rate"].search(
        [("currency_id", "=", gbp.id), ("company_id", "=", company.id)], limit=1
    ):
        env["res.currency.rate"].create(
            {"currency_id": gbp.id, "company_id": company.id, "name": "2020-01-01", "rate": 0.8}
        )
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
        "business_currency": "GBP",
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
    return connection, gbp


def use_business(env, sandbox, connection, user_id, name):
    """A fresh Sage business per scenario, with its reference data synced."""
    business_id = sandbox.add_business(user_id, name, country="GB", subscription="ACCOUNTING")
    connection.write({"business_id": business_id, "business_name": name})
    connection._sage_sync_reference_data()
    connection.default_ledger_id = connection.ledger_account_ids.filtered(
        lambda ledger: ledger.nominal_code == "4000"
    )
    rate = connection.tax_rate_ids.filtered(lambda rate: rate.sage_id == "GB_STANDARD")
    tax = env["account.tax"].create(
        {
            "name": f"VAT 20% ({name} {uuid.uuid4().hex[:6]})",
            "amount": 20,
            "amount_type": "percent",
            "type_tax_use": "sale",
            "company_id": env.company.id,
            "sage_tax_rate_id": rate.id,
        }
    )
    env.cr.commit()
    return business_id, tax


def make_invoices(env, count, customers, gbp, tax, label):
    """``count`` posted GBP invoices for ``customers`` new customers; committed."""
    Move = env["account.move"].with_context(**QUIET_CONTEXT)
    partners = env["res.partner"].create(
        [
            {
                "name": f"{label} Customer {index}",
                "email": f"{label.lower()}-{index}-{uuid.uuid4().hex[:6]}@customer.example",
                "country_id": env.ref("base.uk").id,
            }
            for index in range(customers)
        ]
    )
    move_ids = []
    for start in range(0, count, CREATE_BATCH):
        moves = Move.create(
            [
                {
                    "move_type": "out_invoice",
                    "partner_id": partners[index % customers].id,
                    "invoice_date": "2026-01-15",
                    "currency_id": gbp.id,
                    "invoice_line_ids": [
                        (
                            0,
                            0,
                            {
                                "name": f"{label} work {index}",
                                "quantity": 1 + index % 3,
                                "price_unit": 100.0 + index % 50,
                                "tax_ids": [(6, 0, tax.ids)],
                            },
                        )
                    ],
                }
                for index in range(start, min(start + CREATE_BATCH, count))
            ]
        )
        moves.action_post()
        move_ids += moves.ids
        env.cr.commit()
        env.invalidate_all()
    return env["account.move"].browse(move_ids)


# ----------------------------------------------------------------------------
# One push
# ----------------------------------------------------------------------------
def push(env, sandbox, connection, moves, chunk_size, concurrency, sample_memory=False):
    """Queue ``moves`` in a batch and run the runner until it is done."""
    connection.max_concurrency = concurrency
    env.cr.commit()
    started = time.perf_counter()
    batch = env["sage.push.batch"]._sage_queue(moves, "All")
    env.cr.commit()
    queued_in = time.perf_counter() - started
    batch_id = batch.id
    sandbox.reset_stats()
    memory = []
    calls = 0
    with time_in_sage() as in_sage:
        started = time.perf_counter()
        while True:
            env["sage.push.batch"]._cron_sage_push(chunk_size=chunk_size)
            env.cr.commit()  # what the cron framework does after each call
            env.invalidate_all()
            calls += 1
            done = env["sage.push.batch"].browse(batch_id).state == "done"
            if sample_memory:
                memory.append(rss_mb())
            if done:
                break
            if calls > 10 * (len(moves) // chunk_size + 2):
                raise RuntimeError("the runner does not converge")
        wall = time.perf_counter() - started
    stats = sandbox.stats()
    batch = env["sage.push.batch"].browse(batch_id)
    return {
        "documents": len(moves),
        "queued_in": queued_in,
        "wall": wall,
        "waiting_for_sends": in_sage["waiting_for_sends"],
        "main_thread_http": in_sage["main_thread_http"],
        "odoo": wall - in_sage["waiting_for_sends"] - in_sage["main_thread_http"],
        "calls": sum(count for route, count in stats["by_route"].items() if "/token" not in route),
        "by_route": stats["by_route"],
        "max_in_flight": stats.get("max_in_flight"),
        "sent": batch.sent_count,
        "failed": batch.failed_count,
        "runner_calls": calls,
        "memory": memory,
    }


def check_once(sandbox, business_id, moves):
    """Every invoice exactly once in the sandbox business (by reference)."""
    if isinstance(sandbox, ChildSandbox):
        found = sandbox.references(business_id)
    else:
        found = references(sandbox, business_id)
    counts = {}
    for reference in found:
        counts[reference] = counts.get(reference, 0) + 1
    names = moves.mapped("name")
    missing = [name for name in names if counts.get(name, 0) == 0]
    doubled = [name for name in names if counts.get(name, 0) > 1]
    return not missing and not doubled, len(missing), len(doubled)


# ----------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------
def scenario_calls(env, sandbox, connection, user_id, gbp, args):
    business_id, tax = use_business(env, sandbox, connection, user_id, "Bench calls")
    moves = make_invoices(env, args.calls_invoices, args.calls_customers, gbp, tax, "Calls")
    sandbox.set_faults(latency=0.0)
    result = push(env, sandbox, connection, moves, args.chunk_size, args.concurrency)
    result["once"] = check_once(sandbox, business_id, moves)
    return result


def scenario_latency(env, sandbox, connection, user_id, gbp, args):
    ratio = args.latency_invoices / max(1, args.latency_customers)
    sample_customers = max(1, round(args.serial_sample / ratio))
    try:
        # Serial: the same runner with one request at a time, on a smaller sample.
        business_id, tax = use_business(env, sandbox, connection, user_id, "Bench serial")
        moves = make_invoices(env, args.serial_sample, sample_customers, gbp, tax, "Serial")
        sandbox.set_faults(latency=args.latency)
        from odoo.addons.sage_one_connector.models import sage_push_batch

        pipeline = sage_push_batch.PIPELINE_CHUNKS
        sage_push_batch.PIPELINE_CHUNKS = 1  # no overlap either: a serial pusher
        try:
            serial = push(env, sandbox, connection, moves, args.chunk_size, 1)
        finally:
            sage_push_batch.PIPELINE_CHUNKS = pipeline
        serial["once"] = check_once(sandbox, business_id, moves)
        serial["customers"] = sample_customers
        sandbox.set_faults(latency=0.0)
        # Concurrent: the full batch.
        business_id, tax = use_business(env, sandbox, connection, user_id, "Bench latency")
        moves = make_invoices(
            env, args.latency_invoices, args.latency_customers, gbp, tax, "Latency"
        )
        sandbox.set_faults(latency=args.latency)
        result = push(env, sandbox, connection, moves, args.chunk_size, args.concurrency)
        result["once"] = check_once(sandbox, business_id, moves)
    finally:
        sandbox.set_faults(latency=0.0)
    return result, serial


def scenario_memory(env, sandbox, args):
    """The memory scenario, against ``sandbox`` (a :class:`ChildSandbox`)."""
    try:
        user_id = start_sandbox(sandbox)
        connection, gbp = setup_company(env, sandbox, user_id)
        env.cr.commit()
        business_id, tax = use_business(env, sandbox, connection, user_id, "Bench memory")
        moves = make_invoices(env, args.memory_invoices, args.memory_customers, gbp, tax, "Memory")
        env.invalidate_all()
        before = rss_mb()
        result = push(
            env, sandbox, connection, moves, args.chunk_size, args.concurrency, sample_memory=True
        )
        result["rss_before"] = before
        result["once"] = check_once(sandbox, business_id, moves)
    finally:
        sandbox.stop()
    return result


def start_sandbox(sandbox):
    """Register the benchmark's app and Sage user; return the user id."""
    sandbox.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=["http://localhost/cb"])
    user = sandbox.add_user(
        email="bench@sage-test.example",
        businesses=[{"name": "Bench", "country": "GB", "subscription": "ACCOUNTING"}],
    )
    return user["user_id"]


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------
def report_calls(result, args):
    docs = result["documents"]
    per_invoice = result["calls"] / docs
    odoo_ms = 1000 * result["odoo"] / docs
    print(f"\n1. {docs} invoices for {args.calls_customers} customers new to Sage, latency 0")
    print(f"   runner wall time      {result['wall']:8.2f} s ({result['runner_calls']} calls)")
    print(f"   waiting for Sage      {result['waiting_for_sends']:8.2f} s for concurrent requests")
    print(f"                         {result['main_thread_http']:8.2f} s in its own HTTP calls")
    print(f"   Odoo side             {result['odoo']:8.2f} s = {odoo_ms:.1f} ms per invoice")
    print(f"   queueing (Push Now)   {result['queued_in']:8.2f} s")
    print(f"   Sage calls            {result['calls']} = {per_invoice:.3f} per invoice")
    routes = ", ".join(f"{route} x{count}" for route, count in sorted(result["by_route"].items()))
    print(f"   by route: {routes}")
    print_once(result)
    print(f"   load average now: {load()}")
    print(
        f"   Target <= 1.2 calls per invoice: {'met' if per_invoice <= 1.2 else 'NOT met'}; "
        f"target <= 20 ms Odoo per invoice: {'met' if odoo_ms <= 20 else 'NOT met'}"
    )


def report_latency(result, serial, args):
    docs = result["documents"]
    per_serial = serial["wall"] / serial["documents"]
    extrapolated = per_serial * docs
    print(
        f"\n2. {docs} invoices for {args.latency_customers} new customers, "
        f"{args.latency * 1000:.0f} ms sandbox latency per request"
    )
    print(
        f"   concurrent ({args.concurrency} requests at a time): "
        f"{result['wall']:8.2f} s wall ({result['runner_calls']} runner calls, "
        f"max {result['max_in_flight']} in flight)"
    )
    print(
        f"   serial (1 request at a time): {extrapolated:8.2f} s for {docs} invoices, "
        f"EXTRAPOLATED from {serial['documents']} invoices for {serial['customers']} new "
        f"customers pushed serially in {serial['wall']:.2f} s in this run "
        f"({per_serial * 1000:.0f} ms per invoice)"
    )
    print(f"   speed-up x{extrapolated / result['wall']:.1f}")
    print_once(result)
    print_once(serial, "   serial sample: ")
    print(f"   load average now: {load()}")
    print(f"   Target <= 60 s: {'met' if result['wall'] <= 60 else 'NOT met'}")


def report_memory(result, chunk_size):
    memory = result["memory"]
    docs = result["documents"]
    calls = len(memory)
    print(
        f"\n3. {docs} invoices, latency 0, chunks of {chunk_size}: resident memory (RSS) of "
        "this process (the sandbox runs in a child process)"
    )
    print(
        f"   before {result['rss_before']:.0f} MB, after the first runner call {memory[0]:.0f} MB, "
        f"peak {max(memory):.0f} MB, at the end {memory[-1]:.0f} MB "
        f"({calls} runner calls, {result['wall']:.1f} s)"
    )
    step = max(1, calls // 12)
    print("   after runner call: " + ", ".join(f"{value:.0f}" for value in memory[::step]) + " MB")
    # Growth after the warm-up (first quarter of the calls): a leak grows with the documents.
    warm = max(1, calls // 4)
    per_call = docs / calls
    growth = (memory[-1] - memory[warm - 1]) * 1000 / max(1, (calls - warm) * per_call)
    print(f"   growth after the first {warm} calls: {growth:+.2f} MB per 1,000 documents")
    print_once(result)
    print(f"   load average now: {load()}")
    bounded = growth < 1.0
    print(f"   Bounded (< 1 MB per 1,000 documents after warm-up): {'yes' if bounded else 'NO'}")


def load():
    """The machine's load average (other processes slow the Odoo-side figures down)."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def print_once(result, prefix="   "):
    ok, missing, doubled = result["once"]
    print(
        f"{prefix}sent {result['sent']}, failed {result['failed']}; each invoice in Sage "
        f"exactly once: {'yes' if ok else f'NO ({missing} missing, {doubled} doubled)'}"
    )


def main(argv=None):
    args = parse_args(argv)
    import odoo
    from odoo import SUPERUSER_ID, api
    from odoo.modules.registry import Registry

    from sage_sandbox import SageSandbox

    # The sandbox speaks plain http on 127.0.0.1: oauthlib allows that only when told.
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    # Forked first, while this process has no thread nor database connection yet.
    child = ChildSandbox(access_token_ttl=3600, seed=time.time_ns() % 2**31 + 1)
    if not args.memory_invoices:
        child.stop()
    db = args.db or create_database(args)
    try:
        odoo.tools.config.parse_config(odoo_args(args, db))
        registry = Registry(db)
        # A new seed per run: Sage ids never repeat those of an earlier run in the same database.
        sandbox = SageSandbox(access_token_ttl=3600, seed=time.time_ns() % 2**31).start()
        try:
            user_id = start_sandbox(sandbox)
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                connection, gbp = setup_company(env, sandbox, user_id)
                cr.commit()
                print(
                    f"Chunk size {args.chunk_size}, connection.max_concurrency {args.concurrency}"
                )
                print(f"Load average at start: {load()} ({os.cpu_count()} CPUs)")
                if args.calls_invoices:
                    report_calls(scenario_calls(env, sandbox, connection, user_id, gbp, args), args)
                if args.latency_invoices:
                    result, serial = scenario_latency(env, sandbox, connection, user_id, gbp, args)
                    report_latency(result, serial, args)
                if args.memory_invoices:
                    report_memory(scenario_memory(env, child, args), args.chunk_size)
        finally:
            sandbox.stop()
    finally:
        child.stop()
        # Release the pooled connections, or PostgreSQL refuses to drop the database.
        odoo.sql_db.close_all()
        if not args.db and not args.keep:
            drop_database(args, db)


if __name__ == "__main__":
    main()
