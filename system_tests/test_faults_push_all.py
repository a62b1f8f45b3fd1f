"""Push all of 200 invoices while Sage misbehaves on every kind of call.

The sandbox answers 429 (Retry-After: 1) on 30 % of the API calls, 500/503 on
10 %, and on 5 % of the writes saves the document then drops the connection
without answering (the seed is printed; ``SAGE_FAULT_SEED`` replays it).
Odoo runs as a real server with its cron. The batch must end with every
invoice in Sage exactly once: no duplicate, none missing, and Odoo showing
each invoice sent (or uncertain with its Sage match shown).
"""

import os
import random
import time

from odoo_system import OdooRpc, wait_until, wake_cron
from scenario import audit, batch_progress, connect, push_all

FAULTS = {"rate_429": 0.30, "rate_5xx": 0.10, "drop_after_save": 0.05, "retry_after": 1}
FINISH_TIMEOUT = 600


def test_push_all_under_rate_limits_server_errors_and_dropped_connections(
    make_db, make_server, make_business, report
):
    seed = int(os.environ.get("SAGE_FAULT_SEED") or random.SystemRandom().randrange(10**6))
    print(f"fault seed {seed}: {FAULTS}")
    db = make_db("faults")
    business = make_business(seed)
    sandbox = business.sandbox
    server = make_server(db, name="faults").start()
    rpc = OdooRpc(server)
    connect(rpc, business)
    sandbox.set_faults(**FAULTS, latency=0.01)
    sandbox.reset_stats()
    started = time.monotonic()

    batch_id = push_all(rpc)
    wait_until(
        lambda: batch_progress(db, batch_id)[0] == "done",
        timeout=FINISH_TIMEOUT,
        what=f"the batch to finish: {batch_progress(db, batch_id)}",
        poke=lambda: wake_cron(db),
        interval=0.5,
        poke_every=5.0,
    )
    sandbox.set_faults()  # the audit reads Sage's store directly; no fault applies there
    stats = sandbox.stats()
    result = audit(rpc, business)
    _state, lines = batch_progress(db, batch_id)
    injected = stats["faults_injected"]
    report(
        f"faults (seed {seed}): {sum(injected.values())} faults injected "
        f"({', '.join(f'{kind}: {count}' for kind, count in sorted(injected.items()))}) "
        f"in {stats['requests']} Sage requests; {result.documents} documents, "
        f"{result.documents - result.missing} in Sage, {result.duplicates} duplicates, "
        f"{result.missing} missing, Odoo: {dict(result.states)}, batch lines {lines}, "
        f"{time.monotonic() - started:.0f}s"
    )
    assert result.documents == 200
    assert injected.get("429") and injected.get("drop_after_save"), injected
    assert injected.get("500", 0) + injected.get("503", 0), injected
    result.raise_if_wrong(require_all_in_sage=True)
    assert len(business.invoices()) == 200
