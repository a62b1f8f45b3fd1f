"""Two Odoo server processes refresh the same expired Sage token at the same moment.

Sage rotates refresh tokens: the first refresh kills the old refresh token, and a
second worker that refreshes with it gets ``invalid_grant``, which would force
an administrator to reconnect. Two servers on one database (two workers) run
Test connection at the same instant right after the sandbox expired every
access token (each Sage call takes 0.3 s, so both calls are in flight together
and both are refused). Five rounds. Each round: both servers get their answer,
Sage saw exactly one refresh and no ``invalid_grant``, and the connection
stays connected.
"""

import threading

from odoo_system import OdooRpc
from scenario import connect

ROUNDS = 5
SANDBOX_LATENCY = 0.3


def run_test_connection(rpc, test_id, outcomes, barrier):
    barrier.wait()
    try:
        rpc.call("sage.connection.test", "action_sage_run", [test_id])
        outcomes[rpc.server.name] = rpc.search_read(
            "sage.connection.test.line", [("test_id", "=", test_id)], ["name", "passed", "detail"]
        )
    except Exception as error:
        outcomes[rpc.server.name] = error


def test_two_workers_refresh_the_same_expired_token(make_db, make_server, make_business, report):
    db = make_db("tokens")
    business = make_business(seed=11)
    sandbox = business.sandbox
    servers = [make_server(db, name=name, cron_threads=0) for name in ("worker_a", "worker_b")]
    starters = [threading.Thread(target=server.start) for server in servers]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    assert all(server.alive() for server in servers)
    rpcs = [OdooRpc(server) for server in servers]
    connection_id = connect(rpcs[0], business)
    sandbox.set_faults(latency=SANDBOX_LATENCY)

    refreshes = refused = 0
    for round_number in range(1, ROUNDS + 1):
        tests = {
            rpc.server.name: rpc.call(
                "sage.connection", "action_sage_test_connection", [connection_id]
            )["res_id"]
            for rpc in rpcs
        }
        sandbox.expire_access_tokens()
        sandbox.reset_stats()
        outcomes, barrier = {}, threading.Barrier(len(rpcs))
        threads = [
            threading.Thread(
                target=run_test_connection,
                args=(rpc, tests[rpc.server.name], outcomes, barrier),
            )
            for rpc in rpcs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        stats = sandbox.stats()
        token_calls = stats["by_route"].get("POST /token", 0)
        refused_calls = stats["by_status"].get("401", 0)
        refreshes += token_calls
        refused += refused_calls
        for name, outcome in outcomes.items():
            assert not isinstance(outcome, Exception), f"round {round_number}, {name}: {outcome}"
            access = [line for line in outcome if line["name"] == "Access token"]
            assert access and access[0]["passed"], f"round {round_number}, {name}: {outcome}"
        assert len(outcomes) == 2, outcomes
        assert refused_calls >= 2, f"round {round_number}: both workers met the expired token"
        assert token_calls == 1, f"round {round_number}: {token_calls} refreshes, expected one"
        assert "400" not in stats["by_status"], f"round {round_number}: invalid_grant {stats}"
        [state] = rpcs[1].call("sage.connection", "read", [connection_id], ["state"])
        assert state["state"] == "connected", f"round {round_number}: {state}"
    report(
        f"token race: {ROUNDS} rounds of 2 workers at once, {refused} calls refused with the "
        f"expired token, {refreshes} refreshes, 0 invalid_grant, connection connected"
    )
