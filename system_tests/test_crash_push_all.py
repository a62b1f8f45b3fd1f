"""Push all of 200 invoices while the Odoo server is killed (SIGKILL) 10 times.

The kill points are drawn from a seed (printed; ``SAGE_CRASH_SEED`` replays a
run): each is "the n-th request Sage receives", n in 1..230 (a push of 200
invoices to 20 new customers makes at least 240), then an optional short delay,
so that Odoo dies with requests in flight, while Sage saves a document whose
answer never arrives, between two chunks, or while results are written. After
each kill the same server command starts again; the cron resumes the batch.

Odoo's cron framework counts a job killed 3 times in a row, before it reported
any progress, as timed out: it skips it and reschedules it at its next interval
(10 minutes for this cron). The test then brings that interval forward instead
of waiting, and reports how often it happened.

Afterwards: the batch is done and every invoice is in Sage exactly once, or
marked uncertain with its Sage match shown; Sage holds no duplicate (counted by
reference) and nothing that is not an Odoo invoice.
"""

import os
import random
import time

from odoo_system import OdooRpc, SystemTestError, sql, wait_until, wake_cron
from scenario import audit, batch_progress, connect, push_all

KILLS = 10
KILL_WINDOW = 230  # kill points are among the first 230 requests Sage receives
MAX_DELAY = 0.15  # seconds after the request, for half of the kill points
SANDBOX_LATENCY = 0.02  # per request: keeps requests in flight when the kill comes
FINISH_TIMEOUT = 420


def push_cron_id(db):
    [(cron_id,)] = sql(
        db,
        "SELECT res_id FROM ir_model_data "
        "WHERE module = 'sage_one_connector' AND name = 'ir_cron_sage_push_batches'",
    )
    return cron_id


def cron_parked(db, cron_id):
    """Odoo parked the job: killed 3 times in a row before it reported progress.

    Odoo's cron framework then counts the job as timed out: it skips it and
    reschedules it at its next interval (10 minutes for this cron), dropping
    its due triggers. Nothing else parks a job while its batch is open here.
    """
    return bool(
        sql(
            db,
            """
            SELECT 1 FROM ir_cron c
             WHERE c.id = %s
               AND c.nextcall > (now() AT TIME ZONE 'UTC') + interval '1 minute'
               AND NOT EXISTS (
                   SELECT 1 FROM ir_cron_trigger t
                    WHERE t.cron_id = c.id
                      AND t.call_at <= (now() AT TIME ZONE 'UTC') + interval '2 minutes')
               AND EXISTS (SELECT 1 FROM sage_push_batch WHERE state != 'done')
            """,
            [cron_id],
        )
    )


def resume_parked_cron(db, cron_id):
    """What the next interval does 10 minutes later: the job is due again."""
    sql(db, "UPDATE ir_cron SET nextcall = now() AT TIME ZONE 'UTC' WHERE id = %s", [cron_id])


def kill_plan(seed):
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, KILL_WINDOW + 1), KILLS))
    return [
        (point, 0.0 if rng.random() < 0.5 else round(rng.uniform(0, MAX_DELAY), 3))
        for point in points
    ]


def test_push_all_survives_ten_kills(make_db, make_server, make_business, report):
    seed = int(os.environ.get("SAGE_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    plan = kill_plan(seed)
    print(f"crash seed {seed}: kill after request (n, delay s) {plan}")
    db = make_db("crash")
    business = make_business(seed)
    sandbox = business.sandbox
    server = make_server(db, name="crash").start()
    rpc = OdooRpc(server)
    connect(rpc, business)
    sandbox.set_faults(latency=SANDBOX_LATENCY)
    sandbox.reset_stats()
    started = time.monotonic()

    batch_id = push_all(rpc)

    cron_id = push_cron_id(db)
    parked = []

    def poke():
        if cron_parked(db, cron_id):
            if len(parked) >= len(kills) // 3:
                # More parkings than runs of 3 kills: the job fails on its own.
                errors = [line for line in server.log_text().splitlines() if " ERROR " in line]
                raise SystemTestError(f"the push cron job is not running the batch: {errors[-3:]}")
            parked.append(batch_progress(db, batch_id)[1])
            print(
                f"the cron parked the job after 3 kills in a row; resuming it (batch {parked[-1]})"
            )
            resume_parked_cron(db, cron_id)
        wake_cron(db)

    kills = []
    for number, (point, delay) in enumerate(plan, 1):
        wait_until(
            lambda point=point: sandbox.stats()["requests"] >= point,
            timeout=240,
            what=f"Sage request {point} (kill {number}); batch {batch_progress(db, batch_id)}",
            poke=poke,
            interval=0.002,
        )
        if delay:
            time.sleep(delay)
        server.kill()
        state, lines = batch_progress(db, batch_id)
        kills.append((point, delay, sandbox.stats()["requests"], state, lines))
        print(f"kill {number}: after request {point} (+{delay}s), batch {state} {lines}")
        if state == "done":
            raise SystemTestError(f"the batch finished before kill {number}: raise KILL_WINDOW")
        server.start()

    wait_until(
        lambda: batch_progress(db, batch_id)[0] == "done",
        timeout=FINISH_TIMEOUT,
        what=f"the batch to finish after the last restart: {batch_progress(db, batch_id)}",
        poke=poke,
        interval=0.2,
    )
    result = audit(rpc, business)
    state, lines = batch_progress(db, batch_id)
    # Documents whose answer was lost with a killed server, then found in Sage by the retry.
    found_after_crash = rpc.call(
        "mail.message",
        "search_count",
        [("model", "=", "account.move"), ("body", "ilike", "found in Sage after a lost answer")],
    )
    stats = sandbox.stats()
    report(
        f"crash (seed {seed}): {len(kills)} kills survived, {result.documents} documents, "
        f"{result.duplicates} duplicates, {len(result.lost)} lost "
        f"({result.sent} sent, {found_after_crash} of them found in Sage after a lost answer, "
        f"{result.uncertain} uncertain with their Sage match shown; "
        f"{stats['requests']} Sage requests, {stats['idempotent_replays']} idempotent replays, "
        f"{time.monotonic() - started:.0f}s; the cron parked the job {len(parked)} time(s) after "
        "3 kills in a row and it resumed at its next interval, brought forward)"
    )
    assert len(kills) == KILLS
    assert result.documents == 200
    result.raise_if_wrong()
    assert state == "done" and set(lines) <= {"sent", "uncertain"}, lines
    assert len(business.invoices()) == 200
