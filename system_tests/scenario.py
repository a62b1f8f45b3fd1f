"""The steps a system test takes: a sandbox business, Connect, Push all, and the audit.

The audit compares Odoo (read through JSON-RPC) with the sandbox's store: every
posted invoice must be in Sage exactly once, or be marked *uncertain* with its
Sage match shown; no Sage invoice may exist twice or belong to no Odoo invoice.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from odoo_system import SystemTestError, sql

from sage_sandbox import SageSandbox

CLIENT_ID = "system-tests"
CLIENT_SECRET = "system-tests-secret"  # a sandbox-only credential
TAX_NAME = "VAT 20% (system tests)"


@dataclass
class SandboxBusiness:
    sandbox: SageSandbox
    user_id: str
    business_id: str

    def invoices(self):
        """The business's sales invoices in the sandbox's store (copies)."""
        with self.sandbox.lock:
            return [
                dict(record)
                for record in self.sandbox.state.collection("sales_invoices", self.business_id)
            ]


def start_sandbox(seed, callback_url="http://127.0.0.1/sage_one/oauth/callback"):
    sandbox = SageSandbox(seed=seed).start()
    sandbox.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[callback_url])
    user = sandbox.add_user(
        email="owner@system-tests.example",
        first_name="Sam",
        last_name="System",
        businesses=[
            {
                "name": "System Tests Ltd",
                "country": "GB",
                "subscription": "ACCOUNTING",
                "active": True,
                # The test company invoices in its own currency (USD) while this
                # GB business keeps its books in GBP: Sage needs multi-currency.
                "multi_currency": True,
            }
        ],
    )
    return SandboxBusiness(sandbox, user["user_id"], user["business_ids"][0])


def _utc_string(epoch):
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def connect(rpc, business):
    """Connect the main company to the sandbox business as an administrator would.

    The token pair comes from the sandbox's admin route (what Connect's OAuth
    dance would store); everything else goes through the buttons' methods:
    reference data sync, default and bad-debt ledgers, the tax mapping.
    """
    token = business.sandbox.issue_tokens(CLIENT_ID, user_id=business.user_id)
    now = time.time()
    sandbox = business.sandbox
    values = {
        "api_url": sandbox.api_url,
        "authorize_url": sandbox.authorize_url,
        "token_url": sandbox.token_url,
        "revoke_url": sandbox.revoke_url,
        "app_url": sandbox.url + "/app",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "business_id": business.business_id,
        "business_name": "System Tests Ltd",
        "state": "connected",
        "access_token": token["access_token"],
        "refresh_token": token["refresh_token"],
        "access_token_expires_at": _utc_string(now + token["expires_in"]),
        "refresh_token_expires_at": _utc_string(now + token["refresh_token_expires_in"]),
    }
    company_id = rpc.call("res.users", "read", [rpc.uid], ["company_id"])[0]["company_id"][0]
    existing = rpc.call("sage.connection", "search", [("company_id", "=", company_id)])
    if existing:
        connection_id = existing[0]
        rpc.call("sage.connection", "write", [connection_id], values)
    else:
        connection_id = rpc.call("sage.connection", "create", dict(values, company_id=company_id))
    rpc.call("sage.connection", "action_sage_sync_reference_data", [connection_id])
    ledgers = {
        ledger["nominal_code"]: ledger["id"]
        for ledger in rpc.search_read(
            "sage.ledger.account", [("connection_id", "=", connection_id)], ["nominal_code"]
        )
    }
    rpc.call(
        "sage.connection",
        "write",
        [connection_id],
        {"default_ledger_id": ledgers["4000"], "bad_debt_ledger_id": ledgers["8100"]},
    )
    [rate_id] = rpc.call(
        "sage.tax.rate",
        "search",
        [("connection_id", "=", connection_id), ("sage_id", "=", "GB_STANDARD")],
    )
    tax_ids = rpc.call("account.tax", "search", [("name", "=", TAX_NAME)])
    rpc.call("account.tax", "write", tax_ids, {"sage_tax_rate_id": rate_id})
    return connection_id


def push_all(rpc):
    """Invoicing > Sage > Documents to push > Push all to Sage > Push Now (all types)."""
    action = rpc.call("account.move", "action_sage_open_push_all", [])
    wizard_id = rpc.call("sage.push.wizard", "create", {}, context=action["context"])
    result = rpc.call("sage.push.wizard", "action_push_now", [wizard_id])
    return result["params"]["next"]["res_id"]


def batch_progress(db, batch_id):
    """{line state: count} and the batch state, read from the database."""
    lines = dict(
        sql(
            db,
            "SELECT state, count(*) FROM sage_push_batch_line WHERE batch_id = %s GROUP BY state",
            [batch_id],
        )
    )
    [(state,)] = sql(db, "SELECT state FROM sage_push_batch WHERE id = %s", [batch_id])
    return state, lines


def batch_done(db, batch_id):
    state, _lines = batch_progress(db, batch_id)
    return state == "done"


@dataclass
class Audit:
    documents: int = 0
    sent: int = 0
    uncertain: int = 0
    duplicates: int = 0
    strays: int = 0
    missing: int = 0  # Odoo invoices that are nowhere in Sage
    lost: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    states: Counter = field(default_factory=Counter)

    @property
    def exactly_once(self):
        return not (self.lost or self.problems or self.duplicates or self.strays)

    def raise_if_wrong(self, require_all_in_sage=False):
        if require_all_in_sage and self.missing:
            self.problems.append(f"{self.missing} invoices are not in Sage")
        if not self.exactly_once or self.problems:
            details = "\n".join(self.problems[:30] + [f"lost: {name}" for name in self.lost[:30]])
            raise SystemTestError(
                f"{self.documents} documents: {self.duplicates} duplicates, {self.strays} "
                f"in Sage without an Odoo invoice, {self.missing} not in Sage, "
                f"{len(self.lost)} lost; Odoo states "
                f"{dict(self.states)}\n{details}"
            )


def audit(rpc, business):
    """Every posted customer invoice in Sage once, or uncertain with its match shown."""
    moves = rpc.search_read(
        "account.move",
        [("move_type", "=", "out_invoice"), ("state", "=", "posted")],
        ["name", "sage_state", "sage_id", "sage_number", "sage_candidate_id", "sage_last_error"],
        context={"active_test": False},
    )
    in_sage = business.invoices()
    by_reference = Counter(record.get("reference") for record in in_sage)
    by_id = {record["id"]: record for record in in_sage}
    names = {move["name"] for move in moves}
    result = Audit(documents=len(moves))
    result.duplicates = sum(count - 1 for count in by_reference.values() if count > 1)
    result.strays = sum(count for ref, count in by_reference.items() if ref not in names)
    for move in moves:
        name = move["name"]
        result.states[move["sage_state"]] += 1
        if not by_reference[name]:
            result.missing += 1
        if by_reference[name] > 1:
            result.problems.append(f"{name} is {by_reference[name]} times in Sage")
        if move["sage_state"] == "sent":
            record = by_id.get(move["sage_id"])
            if not record or record.get("reference") != name:
                result.problems.append(f"{name} is sent but linked to {move['sage_id']!r}")
            elif record.get("invoice_number") != move["sage_number"]:
                result.problems.append(
                    f"{name} shows {move['sage_number']}, Sage says {record.get('invoice_number')}"
                )
            else:
                result.sent += 1
        elif move["sage_state"] == "uncertain":
            candidate = by_id.get(move["sage_candidate_id"] or "")
            if candidate and candidate.get("reference") == name:
                result.uncertain += 1  # in Sage once, its match shown for a person to link
            else:
                result.lost.append(f"{name} (uncertain, no matching Sage document shown)")
        else:
            result.lost.append(f"{name} ({move['sage_state']}: {move['sage_last_error'] or ''})")
    return result
