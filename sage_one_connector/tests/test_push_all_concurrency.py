"""Push all to Sage with real concurrent transactions on committed data.

Row locks and advisory locks only matter between transactions, and a second
transaction only sees committed rows: these tests commit a connection of the
main company, a tax, customers, invoices and a batch through their own
cursors, run runners in threads (each with its own cursor), and delete
everything afterwards.
"""

import threading
import time
import uuid
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import Registry
from odoo.tests import tagged

from .common import TEST_CLIENT_ID, TEST_CLIENT_SECRET, SageSandboxCase

QUIET_CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_notrack": True}
LOCK_TIMEOUT = "10s"


@tagged("post_install", "-at_install")
class TestPushAllConcurrency(SageSandboxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_ = cls.env.registry
        cls.main_company_id = cls.env.ref("base.main_company").id
        cls.created = {"partners": [], "moves": [], "batches": []}
        cls._delete_committed()
        cls.addClassCleanup(cls._delete_committed)
        token = cls.sandbox.issue_tokens(TEST_CLIENT_ID, user_id=cls.sage_user_id)
        now = time.time()
        token = dict(
            token,
            expires_at=now + token["expires_in"],
            refresh_token_expires_at=now + token["refresh_token_expires_in"],
        )
        with cls._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            company = env["res.company"].browse(cls.main_company_id)
            if not company.chart_template:
                env["account.chart.template"].try_loading(
                    "generic_coa", company, install_demo=False
                )
            connection = env["sage.connection"].create(
                {
                    "company_id": company.id,
                    "api_url": cls.sandbox.api_url,
                    "authorize_url": cls.sandbox.authorize_url,
                    "token_url": cls.sandbox.token_url,
                    "revoke_url": cls.sandbox.revoke_url,
                    "client_id": TEST_CLIENT_ID,
                    "client_secret": TEST_CLIENT_SECRET,
                    "business_id": cls.sage_business_id,
                    "business_name": "Test Trading Ltd",
                    "state": "connected",
                    "max_concurrency": 4,
                }
            )
            connection._sage_store_token(token)
            connection._sage_sync_reference_data()
            connection.default_ledger_id = connection.ledger_account_ids.filtered(
                lambda ledger: ledger.nominal_code == "4000"
            )
            # A business keeping its books in the company's currency (see common.py).
            connection.business_currency = company.currency_id.name
            tax = env["account.tax"].create(
                {
                    "name": f"VAT 20% (Sage concurrency test {uuid.uuid4().hex[:6]})",
                    "amount": 20,
                    "amount_type": "percent",
                    "type_tax_use": "sale",
                    "company_id": company.id,
                    "sage_tax_rate_id": connection.tax_rate_ids.filtered(
                        lambda rate: rate.sage_id == "GB_STANDARD"
                    ).id,
                }
            )
            cls.connection_id, cls.tax_id = connection.id, tax.id

    @classmethod
    def _cursor(cls):
        """A real transaction that fails instead of hanging on someone's locks."""
        cr = cls.registry_.cursor()
        cr.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        return cr

    @classmethod
    def _delete_committed(cls):
        created = getattr(cls, "created", {})
        with cls._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            if created.get("moves"):
                cr.execute("DELETE FROM account_move WHERE id IN %s", [tuple(created["moves"])])
            if created.get("batches"):
                cr.execute(
                    "DELETE FROM sage_push_batch WHERE id IN %s", [tuple(created["batches"])]
                )
            cron = env.ref("sage_one_connector.ir_cron_sage_push_batches")
            env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]).unlink()
            env.invalidate_all()
            env["res.partner"].browse(created.get("partners", [])).exists().unlink()
            if getattr(cls, "tax_id", None):
                env["account.tax"].browse(cls.tax_id).exists().unlink()
            env["sage.connection"].search(
                [
                    ("company_id", "=", cls.main_company_id),
                    ("api_url", "like", "http://127.0.0.1"),
                ]
            ).unlink()
        for key in created:
            created[key] = []

    def _make_batch(self, count, customers=2):
        """Commit ``count`` posted invoices and a queued batch of them; return ids."""
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            partners = env["res.partner"].create(
                [
                    {
                        "name": f"Concurrent Customer {index}",
                        "email": f"concurrent-{uuid.uuid4().hex[:8]}@customer.example",
                    }
                    for index in range(customers)
                ]
            )
            self.created["partners"] += partners.ids
            moves = env["account.move"].create(
                [
                    {
                        "move_type": "out_invoice",
                        "company_id": self.main_company_id,
                        "partner_id": partners[index % customers].id,
                        "invoice_date": "2026-01-15",
                        "invoice_line_ids": [
                            Command.create(
                                {
                                    "name": f"Concurrent work {index}",
                                    "quantity": 1,
                                    "price_unit": 100.0 + index,
                                    "tax_ids": [Command.set([self.tax_id])],
                                }
                            )
                        ],
                    }
                    for index in range(count)
                ]
            )
            self.created["moves"] += moves.ids
            moves.action_post()
            batch = env["sage.push.batch"]._sage_queue(moves, "All")
            self.created["batches"].append(batch.id)
            return batch.id, moves.ids, moves.mapped("name")

    def _read(self, model, ids, field_names):
        with self.registry_.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return env[model].browse(ids).read(field_names)

    def _run_runner(self, chunk_size):
        """One runner call in its own committed transaction; returns what it finished."""
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            return env["sage.push.batch"]._cron_sage_push(chunk_size=chunk_size)

    def _in_sage(self, names):
        with self.sandbox.lock:
            records = list(self.sandbox.state.collection("sales_invoices", self.sage_business_id))
        return {name: [r for r in records if r.get("reference") == name] for name in names}

    def test_two_runners_started_together_push_each_document_once(self):
        batch_id, move_ids, names = self._make_batch(8)
        self.sandbox.set_faults(latency=0.05)  # so that the two runners overlap
        self.addCleanup(self.sandbox.set_faults, latency=0.0)
        barrier = threading.Barrier(2)
        finished, errors = {"a": 0, "b": 0}, {}

        def runner(name):
            try:
                barrier.wait(timeout=10)
                idle = 0
                for _call in range(40):
                    done = self._run_runner(chunk_size=2)
                    finished[name] += done
                    state = self._read("sage.push.batch", [batch_id], ["state"])[0]["state"]
                    if state == "done":
                        return
                    idle = idle + 1 if not done else 0
                    time.sleep(0.02 * idle)  # the other one holds the batch: let it work
            except Exception as error:  # reported by the assertions below
                errors[name] = error

        threads = [threading.Thread(target=runner, args=(name,)) for name in ("a", "b")]
        # The test runner holds the registry lock for the whole run; environments
        # created in other threads would wait for it forever.
        with patch.object(Registry, "_lock", threading.RLock()):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        self.assertFalse([thread for thread in threads if thread.is_alive()])
        self.assertFalse(errors)
        self.assertEqual(finished["a"] + finished["b"], 8, "every document processed once")
        for name, records in self._in_sage(names).items():
            self.assertEqual(len(records), 1, f"{name} is {len(records)} times in Sage")
        moves = self._read("account.move", move_ids, ["sage_state", "sage_id"])
        self.assertEqual({move["sage_state"] for move in moves}, {"sent"})
        self.assertEqual(len({move["sage_id"] for move in moves}), 8)
        batch = self._read("sage.push.batch", [batch_id], ["state", "sent_count"])[0]
        self.assertEqual((batch["state"], batch["sent_count"]), ("done", 8))

    def test_documents_locked_by_another_transaction_are_skipped_not_waited_for(self):
        batch_id, move_ids, names = self._make_batch(5)
        held = move_ids[:2]
        with self._cursor() as holder:
            # Someone else's transaction holds two of the documents.
            holder.execute(
                "SELECT id FROM account_move WHERE id IN %s FOR NO KEY UPDATE", [tuple(held)]
            )
            started = time.monotonic()
            self.assertEqual(self._run_runner(chunk_size=10), 3)
            self.assertLess(time.monotonic() - started, 8, "the runner did not wait")
            lines = self._read("sage.push.batch", [batch_id], ["line_ids"])[0]["line_ids"]
            states = {
                line["move_id"][0]: line["state"]
                for line in self._read("sage.push.batch.line", lines, ["move_id", "state"])
            }
            self.assertEqual({states[move_id] for move_id in held}, {"queued"})
            self.assertEqual({states[move_id] for move_id in move_ids[2:]}, {"sent"})
            holder.rollback()
        # Released: the next call pushes them.
        while self._run_runner(chunk_size=10):
            pass
        for name, records in self._in_sage(names).items():
            self.assertEqual(len(records), 1, f"{name} is {len(records)} times in Sage")
        batch = self._read("sage.push.batch", [batch_id], ["state", "sent_count"])[0]
        self.assertEqual((batch["state"], batch["sent_count"]), ("done", 5))

    def test_transaction_older_than_a_change_claims_later_instead_of_failing(self):
        batch_id, move_ids, names = self._make_batch(2, customers=1)
        with self._cursor() as runner_cr:
            env = api.Environment(runner_cr, SUPERUSER_ID, {})
            self.assertEqual(env["sage.push.batch"].browse(batch_id).state, "queued")
            # Odoo's transactions are REPEATABLE READ: the runner's snapshot is taken.
            # Someone saves one of the documents (a new row version) and commits.
            with self._cursor() as other_cr:
                other_cr.execute(
                    "UPDATE account_move SET write_date = now() at time zone 'UTC' WHERE id = %s",
                    [move_ids[0]],
                )
            triggers = env["ir.cron.trigger"].search_count([])
            self.assertEqual(env["sage.push.batch"]._cron_sage_push(chunk_size=10), 0)
            self.assertGreater(env["ir.cron.trigger"].search_count([]), triggers)
        # The next call, in a new transaction, pushes both.
        self.assertEqual(self._run_runner(chunk_size=10), 2)
        for name, records in self._in_sage(names).items():
            self.assertEqual(len(records), 1, f"{name} is {len(records)} times in Sage")
