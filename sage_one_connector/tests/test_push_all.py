"""Push all to Sage: the wizard, the background batch, recovery and the completion report."""

import json
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged
from odoo.tests.common import JsonRpcException

from odoo.addons.sage_one_connector.models import sage_push_batch
from odoo.addons.sage_one_connector.sage_api.push import send_document

from .test_send_common import SagePushCase


class PushAllCase(SagePushCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.terms_30 = cls.env.ref("account.account_payment_term_30days")
        cls.terms_now = cls.env.ref("account.account_payment_term_immediate")
        bank_journal = cls.company_data["default_journal_bank"]
        cls.bank_method = bank_journal.inbound_payment_method_line_ids[:1]
        cls.cron = cls.env.ref("sage_one_connector.ir_cron_sage_push_batches")

    def setUp(self):
        super().setUp()
        self.addCleanup(self.clear_sandbox_faults)
        self.addCleanup(self.sandbox.set_faults, latency=0.0)
        self.clear_sandbox_faults()
        # Bus messages of an earlier test wait in the cursor's pre-commit data.
        self.env.cr.precommit.clear()
        self.addCleanup(self.env.cr.precommit.clear)

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def make_typed_invoice(self, kind, partner=None, **values):
        """An invoice whose payment type is the bank method, 30-day terms or unspecified."""
        typed = {
            "method": {
                "preferred_payment_method_line_id": self.bank_method.id,
                "invoice_payment_term_id": self.terms_30.id,
            },
            "terms": {
                "preferred_payment_method_line_id": False,
                "invoice_payment_term_id": self.terms_30.id,
            },
            "none": {
                "preferred_payment_method_line_id": False,
                "invoice_payment_term_id": False,
            },
        }[kind]
        post = values.pop("post", True)
        move = self.make_invoice(partner=partner, post=False, **values)
        # Set after creation: the partner's defaults are computed at creation.
        move.write(typed)
        if post:
            move.action_post()
        return move

    def open_wizard(self, moves=None, user=None):
        user = user or self.manager_user
        moves = (moves or self.env["account.move"]).with_user(user)
        action = moves.action_sage_open_push_all()
        self.assertEqual(action["res_model"], "sage.push.wizard")
        return (
            self.env["sage.push.wizard"]
            .with_user(user)
            .with_context(**action["context"])
            .create({})
        )

    def type_line(self, wizard, kind):
        key = {
            "method": f"method:{self.bank_method.id}",
            "terms": f"terms:{self.terms_30.id}",
            "none": "none",
        }[kind]
        return wizard.type_line_ids.filtered(lambda line: line.key == key)

    def push_now(self, wizard):
        action = wizard.action_push_now()
        batch = self.env["sage.push.batch"].browse(action["params"]["next"]["res_id"])
        return action, batch

    def run_runner(self, chunk_size=sage_push_batch.CHUNK_SIZE, max_calls=50):
        """Call the runner like the cron framework does, until it reports no progress."""
        calls = 0
        while self.env["sage.push.batch"]._cron_sage_push(chunk_size=chunk_size):
            calls += 1
            self.assertLess(calls, max_calls, "the runner does not converge")
        return calls

    def bus_notifications(self, partner):
        """Payloads of the simple notifications sent to ``partner``."""
        self.env.cr.precommit.run()  # bus messages are written at pre-commit
        channel = json.dumps([self.env.cr.dbname, "res.partner", partner.id], separators=(",", ":"))
        messages = [
            json.loads(bus.message)
            for bus in self.env["bus.bus"].sudo().search([("channel", "=", channel)], order="id")
        ]
        return [m["payload"] for m in messages if m["type"] == "simple_notification"]

    def make_foreign_draft(self, company):
        """A draft customer invoice of another company (no tax: the taxes are ours)."""
        return (
            self.env["account.move"]
            .with_company(company)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.make_customer().id,
                    "invoice_date": "2026-01-15",
                    "invoice_line_ids": [
                        Command.create({"name": "Elsewhere", "quantity": 1, "price_unit": 10.0})
                    ],
                }
            )
        )

    def assertOnceInSage(self, move, collection="sales_invoices"):
        matching = self.sage_documents_of(move, collection)
        self.assertEqual(len(matching), 1, f"{move.name} is {len(matching)} times in Sage")
        self.assertEqual(matching[0]["id"], move.sage_id)


@tagged("post_install", "-at_install")
class TestPushAllWizard(PushAllCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_data_2 = cls.setup_other_company()

    def test_preview_groups_unsent_documents_by_payment_type(self):
        customer = self.make_customer()
        by_method = self.make_typed_invoice("method", customer)  # method wins over terms
        by_method_2 = self.make_typed_invoice("method", customer)
        by_terms = self.make_typed_invoice("terms", customer)
        unspecified = self.make_typed_invoice("none", customer)
        credit_note = self.make_credit_note(unspecified, post=False)
        credit_note.write(
            {"invoice_payment_term_id": False, "preferred_payment_method_line_id": False}
        )
        credit_note.action_post()
        self.make_typed_invoice("terms", customer, post=False)  # a draft: counted for removal
        sent = self.make_typed_invoice("terms", customer)
        sent.write({"sage_state": "sent", "sage_id": "already-there", "sage_number": "SI-1"})
        uncertain = self.make_typed_invoice("none", customer)
        uncertain.sage_state = "uncertain"  # left to a financial manager

        wizard = self.open_wizard()
        self.assertEqual(wizard.scope, "all")
        self.assertEqual(len(wizard.type_line_ids), 3)
        method, terms, none = (self.type_line(wizard, kind) for kind in ("method", "terms", "none"))
        self.assertEqual(method.name, self.bank_method.display_name)
        self.assertEqual(terms.name, self.terms_30.display_name)
        self.assertEqual(none.name, "Unspecified")
        self.assertEqual(
            (method.document_count, terms.document_count, none.document_count), (2, 1, 2)
        )
        # Totals in the company's currency.
        self.assertAlmostEqual(
            method.amount_total, by_method.amount_total_signed + by_method_2.amount_total_signed
        )
        self.assertAlmostEqual(terms.amount_total, by_terms.amount_total_signed)
        # A credit note counts negatively in its type's total.
        self.assertAlmostEqual(none.amount_total, 0.0)
        self.assertEqual((method.draft_count, terms.draft_count, none.draft_count), (0, 1, 0))
        self.assertEqual(wizard.push_count, 5)
        self.assertEqual(wizard.draft_count, 1)

        wizard.mode = "types"
        self.assertEqual(wizard.push_count, 0)
        terms.selected = True
        self.assertEqual(wizard.push_count, 1)
        self.assertEqual(wizard.draft_count, 1)

    def test_preview_of_a_list_selection_covers_only_the_selection(self):
        selected = self.make_typed_invoice("terms") | self.make_typed_invoice("none")
        self.make_typed_invoice("terms")  # not selected
        wizard = self.open_wizard(selected)
        self.assertEqual(wizard.scope, "selection")
        self.assertEqual(wizard.move_ids, selected)
        self.assertEqual(wizard.push_count, 2)
        self.assertEqual(sorted(wizard.type_line_ids.mapped("document_count")), [1, 1])

    def test_push_all_types_queues_everything_and_says_so(self):
        moves = self.make_typed_invoice("method") | self.make_typed_invoice("terms")
        moves |= self.make_typed_invoice("none")
        action, batch = self.push_now(self.open_wizard())
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("3 invoices are being pushed to Sage", action["params"]["message"])
        self.assertEqual(action["params"]["links"][0]["label"], batch.display_name)
        self.assertEqual(action["params"]["next"]["res_model"], "sage.push.batch")
        self.assertEqual(batch.requester_id, self.manager_user)
        self.assertEqual(batch.requester_partner_id, self.manager_user.partner_id)
        self.assertEqual(batch.payment_types, "All")
        self.assertEqual(batch.line_ids.move_id, moves)
        self.assertEqual(set(batch.line_ids.mapped("state")), {"queued"})
        self.assertEqual(set(moves.mapped("sage_state")), {"queued"})
        self.assertEqual((batch.state, batch.total_count, batch.done_count), ("queued", 3, 0))
        # The runner is woken at once.
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)]))
        self.assertEqual(self.sage_writes(), 0, "nothing is sent before the runner runs")

        self.run_runner()
        self.assertEqual(batch.state, "done")
        self.assertEqual((batch.done_count, batch.sent_count, batch.progress), (3, 3, 100.0))
        for move in moves:
            self.assertEqual(move.sage_state, "sent")
            self.assertOnceInSage(move)
        # Queued documents are no longer offered by a new wizard.
        self.assertFalse(self.open_wizard().type_line_ids)

    def test_push_one_payment_type_at_a_time(self):
        by_terms = self.make_typed_invoice("terms") | self.make_typed_invoice("terms")
        by_method = self.make_typed_invoice("method")
        unspecified = self.make_typed_invoice("none")
        wizard = self.open_wizard()
        wizard.mode = "types"
        self.type_line(wizard, "terms").selected = True
        _action, batch = self.push_now(wizard)
        self.assertEqual(batch.line_ids.move_id, by_terms)
        self.assertEqual(batch.payment_types, self.terms_30.display_name)
        self.run_runner()
        self.assertEqual(set(by_terms.mapped("sage_state")), {"sent"})
        self.assertEqual(set((by_method | unspecified).mapped("sage_state")), {"not_sent"})

        wizard = self.open_wizard()
        self.assertEqual(len(wizard.type_line_ids), 2)
        self.assertFalse(self.type_line(wizard, "terms"))
        wizard.mode = "types"
        self.type_line(wizard, "none").selected = True
        _action, batch = self.push_now(wizard)
        self.assertEqual(batch.line_ids.move_id, unspecified)

    def test_nothing_chosen_or_nothing_to_push_is_refused(self):
        self.make_typed_invoice("terms")
        wizard = self.open_wizard()
        wizard.mode = "types"
        with self.assertRaisesRegex(UserError, "Choose at least one payment type"):
            wizard.action_push_now()
        with self.assertRaisesRegex(UserError, "Choose at least one payment type"):
            wizard.action_remove_drafts()
        empty = self.open_wizard(self.make_typed_invoice("none", post=False))
        with self.assertRaisesRegex(UserError, "Nothing to push"):
            empty.action_push_now()
        self.assertFalse(self.env["sage.push.batch"].search([]))

    def test_push_refused_when_the_company_is_not_connected(self):
        self.make_typed_invoice("terms")
        wizard = self.open_wizard()
        self.connection.state = "needs_reconnect"
        with self.assertRaisesRegex(UserError, "must reconnect it"):
            wizard.action_push_now()
        self.assertFalse(self.env["sage.push.batch"].search([]))

    def test_selection_of_several_companies_is_refused(self):
        other = self.company_data_2["company"]
        self.manager_user.company_ids |= other
        mine = self.make_typed_invoice("none")
        theirs = self.make_foreign_draft(other)
        with self.assertRaisesRegex(UserError, "several companies"):
            (mine | theirs).with_user(self.manager_user).action_sage_open_push_all()

    def test_remove_leaves_other_companies_and_vendor_bills(self):
        draft_bill = self.init_invoice("in_invoice", products=self.product_a)
        foreign = self.make_foreign_draft(self.company_data_2["company"])
        mine = self.make_typed_invoice("none", post=False)
        self.open_wizard().action_remove_drafts()
        self.assertFalse(mine.exists())
        self.assertTrue(draft_bill.exists())
        self.assertTrue(foreign.exists())


@tagged("post_install", "-at_install")
class TestPushAllRights(PushAllCase):
    def test_team_user_cannot_open_push_or_remove(self):
        invoice = self.make_typed_invoice("terms")
        draft = self.make_typed_invoice("terms", post=False)
        Move = self.env["account.move"].with_user(self.team_user)
        with self.assertRaises(AccessError):
            Move.action_sage_open_push_all()
        with self.assertRaises(AccessError):
            invoice.with_user(self.team_user).action_sage_open_push_all()
        with self.assertRaises(AccessError):
            self.env["sage.push.wizard"].with_user(self.team_user).create({})
        with self.assertRaises(AccessError):
            self.env["sage.push.batch"].with_user(self.team_user)._sage_queue(invoice, "All")
        # A wizard made by a manager cannot be run by the team user either.
        wizard = self.open_wizard()
        with self.assertRaises(AccessError):
            wizard.with_user(self.team_user).action_push_now()
        with self.assertRaises(AccessError):
            wizard.with_user(self.team_user).action_remove_drafts()
        self.assertTrue(draft.exists())
        self.assertEqual(invoice.sage_state, "not_sent")
        self.assertFalse(self.env["sage.push.batch"].search([]))
        with self.assertRaises(AccessError):
            self.env["sage.push.batch"].with_user(self.team_user).search([])


@tagged("post_install", "-at_install")
class TestPushAllRightsRpc(PushAllCase, HttpCase):
    """The rights through JSON-RPC, as the web client or any script calls them."""

    def call(self, login, model, method, args, kwargs=None):
        self.authenticate(login, login)
        return self.make_jsonrpc_request(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def test_rpc_team_user_gets_access_error(self):
        invoice = self.make_typed_invoice("terms")
        for model, method, args in (
            ("account.move", "action_sage_open_push_all", [[]]),
            ("account.move", "action_sage_open_push_all", [invoice.ids]),
            ("sage.push.wizard", "create", [{}]),
            ("sage.push.wizard", "default_get", [["type_line_ids"]]),
        ):
            with (
                self.subTest(method=method),
                self.assertRaisesRegex(JsonRpcException, "AccessError"),
            ):
                self.call("sage_team", model, method, args)
        wizard = self.open_wizard()
        with self.assertRaisesRegex(JsonRpcException, "AccessError"):
            self.call("sage_team", "sage.push.wizard", "action_push_now", [wizard.ids])
        invoice.invalidate_recordset()
        self.assertEqual(invoice.sage_state, "not_sent")

        action = self.call("sage_manager", "account.move", "action_sage_open_push_all", [[]])
        self.assertEqual(action["res_model"], "sage.push.wizard")
        wizard_id = self.call(
            "sage_manager", "sage.push.wizard", "create", [{}], {"context": action["context"]}
        )
        result = self.call("sage_manager", "sage.push.wizard", "action_push_now", [[wizard_id]])
        self.assertIn("1 invoices are being pushed", result["params"]["message"])


@tagged("post_install", "-at_install")
class TestPushAllRemoveInvoices(PushAllCase):
    def test_remove_deletes_unsent_drafts_and_keeps_posted_and_pushed(self):
        customer = self.make_customer()
        posted = self.make_typed_invoice("terms", customer)
        pushed = self.make_typed_invoice("none", customer)
        self.send(pushed)
        drafts = self.make_typed_invoice("terms", customer, post=False)
        drafts |= self.make_typed_invoice("none", customer, post=False)
        drafts |= self.make_typed_invoice("none", customer, post=False, move_type="out_refund")
        self.assertEqual(pushed.sage_state, "sent")
        wizard = self.open_wizard(drafts | posted | pushed)
        self.assertEqual(wizard.draft_count, 3)
        action = wizard.action_remove_drafts()
        self.assertIn("3 draft invoice(s) removed; 2 kept", action["params"]["message"])
        self.assertEqual(action["params"]["type"], "success")
        self.assertFalse(drafts.exists())
        self.assertEqual((posted | pushed).exists(), posted | pushed)
        self.assertEqual(pushed.sage_state, "sent")

    def test_numbered_draft_inside_the_sequence_is_kept_and_explained(self):
        customer = self.make_customer()
        reset = self.make_typed_invoice("none", customer)
        reset.button_draft()  # keeps its number
        self.make_typed_invoice("none", customer)  # a later number: removing would leave a gap
        tail = self.make_typed_invoice("none", customer, post=False)
        action = self.open_wizard().action_remove_drafts()
        params = action["params"]
        self.assertEqual(params["type"], "warning")
        self.assertIn("1 draft invoice(s) removed; 2 kept", params["message"])
        self.assertIn(f"{reset.name}: You cannot delete this entry", params["message"])
        self.assertTrue(reset.exists())
        self.assertFalse(tail.exists())

    def test_remove_only_the_drafts_of_the_chosen_payment_type(self):
        by_terms = self.make_typed_invoice("terms", post=False)
        unspecified = self.make_typed_invoice("none", post=False)
        wizard = self.open_wizard()
        wizard.mode = "types"
        self.type_line(wizard, "terms").selected = True
        self.assertEqual(wizard.draft_count, 1)
        action = wizard.action_remove_drafts()
        self.assertIn("1 draft invoice(s) removed", action["params"]["message"])
        self.assertFalse(by_terms.exists())
        self.assertTrue(unspecified.exists())


@tagged("post_install", "-at_install")
class TestPushAllRunner(PushAllCase):
    def test_completion_notification_and_summary_name_every_document(self):
        good = self.make_typed_invoice("terms") | self.make_typed_invoice("terms")
        no_email = self.make_typed_invoice("terms", self.make_customer(email=False))
        _action, batch = self.push_now(self.open_wizard())
        self.run_runner()
        self.assertEqual(batch.state, "done")
        self.assertTrue(batch.date_done)
        sent_lines = batch.line_ids.filtered(lambda line: line.state == "sent")
        self.assertEqual(sent_lines.move_id, good)
        for line in sent_lines:
            self.assertEqual(line.sage_number, line.move_id.sage_number)
            self.assertTrue(line.sage_number)
        failed = batch.line_ids - sent_lines
        self.assertEqual(failed.move_id, no_email)
        self.assertEqual(failed.state, "error")
        self.assertIn("has no email address", failed.message)
        self.assertEqual(no_email.sage_state, "error")
        self.assertIn("has no email address", no_email.sage_last_error)

        notifications = self.bus_notifications(self.manager_user.partner_id)
        self.assertEqual(len(notifications), 1)
        payload = notifications[0]
        self.assertEqual(payload["title"], "Invoice push complete")
        self.assertEqual(payload["type"], "warning")
        self.assertTrue(payload["sticky"])
        message = payload["message"]
        for move in good:
            self.assertIn(f"{move.name} → Sage {move.sage_number}", message)
            self.assertIn(f"{move.name} → Sage {move.sage_number}", batch.summary)
        self.assertIn(f"{no_email.name}: Error — ", message)
        self.assertIn("has no email address", message)
        self.assertIn("2 of 3 document(s) sent to Sage, 1 not sent", batch.summary)

    def test_long_batch_notification_summarises_and_points_to_the_batch(self):
        moves = self.env["account.move"]
        customer = self.make_customer()
        for _index in range(4):
            moves |= self.make_typed_invoice("none", customer)
        no_email = self.make_typed_invoice("none", self.make_customer(email=False))
        _action, batch = self.push_now(self.open_wizard())
        with patch.object(sage_push_batch, "NOTIFICATION_MAX_DOCUMENTS", 3):
            self.run_runner()
        payload = self.bus_notifications(self.manager_user.partner_id)[0]["message"]
        self.assertIn("4 of 5 document(s) sent to Sage, 1 not sent", payload)
        self.assertIn(no_email.name, payload, "failures are listed")
        for move in moves:
            self.assertNotIn(move.sage_number, payload, "successes are only counted")
            self.assertIn(move.sage_number, batch.summary, "the batch keeps every document")
        self.assertIn(f"/odoo/action-sage_one_connector.sage_push_batch_action/{batch.id}", payload)

    def test_contacts_are_resolved_once_per_new_customer(self):
        customers = [self.make_customer() for _index in range(2)]
        moves = self.env["account.move"]
        for index in range(6):
            moves |= self.make_typed_invoice("none", customers[index % 2])
        self.push_now(self.open_wizard())
        self.sandbox.reset_stats()
        self.run_runner(chunk_size=4)  # the second chunk finds the links of the first
        routes = self.sandbox.stats()["by_route"]
        self.assertEqual(routes.get("POST /contacts"), 2)
        self.assertEqual(routes.get("GET /contacts"), 2)
        self.assertEqual(routes.get("POST /sales_invoices"), 6)
        self.assertEqual(sum(routes.values()), 10)
        self.assertEqual(set(moves.mapped("sage_state")), {"sent"})

    def test_documents_are_sent_concurrently(self):
        customer = self.make_customer()
        self.send(self.make_typed_invoice("none", customer))  # the contact exists
        moves = self.env["account.move"]
        for _index in range(8):
            moves |= self.make_typed_invoice("none", customer)
        self.connection.max_concurrency = 4
        self.push_now(self.open_wizard())
        self.sandbox.set_faults(latency=0.2)
        self.sandbox.reset_stats()
        self.run_runner()
        self.assertGreaterEqual(self.sandbox.stats()["max_in_flight"], 2)
        self.assertEqual(set(moves.mapped("sage_state")), {"sent"})
        for move in moves:
            self.assertOnceInSage(move)

    def test_failures_are_parked_and_not_retried(self):
        good = self.make_typed_invoice("none")
        refused = self.make_typed_invoice("none", good.partner_id)
        no_email = self.make_typed_invoice("none", self.make_customer(email=False))
        self.send(self.make_typed_invoice("none", good.partner_id))  # the contact exists
        _action, batch = self.push_now(self.open_wizard())
        # Sage refuses one document (422: nothing created).
        self.sandbox.fail_next(1, status=422, path_contains="POST /sales_invoices")
        progress_model = self.env["ir.cron.progress"]
        self.cron.method_direct_trigger()
        progress = progress_model.search([("cron_id", "=", self.cron.id)], order="id desc", limit=1)
        self.assertEqual((progress.done, progress.remaining), (3, 0))
        self.assertEqual(batch.state, "done")
        states = {line.move_id: line.state for line in batch.line_ids}
        self.assertEqual(states[no_email], "error")
        self.assertEqual(sorted(states[move] for move in (good, refused)), ["error", "sent"])
        writes = self.sage_writes()
        # Nothing left for the runner: the failures are not pushed again.
        self.assertEqual(self.env["sage.push.batch"]._cron_sage_push(), 0)
        self.assertEqual(self.sage_writes(), writes)
        self.assertEqual(no_email.sage_state, "error")

    def test_runner_reports_chunks_to_the_cron_framework(self):
        customer = self.make_customer()
        for _index in range(7):
            self.make_typed_invoice("none", customer)
        self.push_now(self.open_wizard())
        progress = self.env["ir.cron.progress"].create({"cron_id": self.cron.id})
        Batch = self.env["sage.push.batch"].with_context(ir_cron_progress_id=progress.id)
        # A call pushes PIPELINE_CHUNKS chunks (one prepared while another is sent).
        with patch.object(sage_push_batch, "PIPELINE_CHUNKS", 1):
            self.assertEqual(Batch._cron_sage_push(chunk_size=2), 2)
        self.assertEqual((progress.done, progress.remaining), (2, 5))
        with patch.object(sage_push_batch, "PIPELINE_CHUNKS", 2):
            self.assertEqual(Batch._cron_sage_push(chunk_size=2), 4)
        self.assertEqual((progress.done, progress.remaining), (4, 1))
        Batch._cron_sage_push(chunk_size=2)
        self.assertEqual((progress.done, progress.remaining), (1, 0))

    def test_long_cron_job_ends_before_the_time_limit_and_is_retriggered(self):
        customer = self.make_customer()
        for _index in range(3):
            self.make_typed_invoice("none", customer)
        _action, batch = self.push_now(self.open_wizard())
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)])
        progress = self.env["ir.cron.progress"].create({"cron_id": self.cron.id})
        Batch = self.env["sage.push.batch"].with_context(ir_cron_progress_id=progress.id)
        with (
            patch.object(sage_push_batch, "PIPELINE_CHUNKS", 1),
            patch.object(sage_push_batch, "JOB_TIME_BUDGET", -1),
        ):
            self.assertEqual(Batch._cron_sage_push(chunk_size=1), 1)
        # Reported as finished so that the framework ends the job; a new job is triggered.
        self.assertEqual((progress.done, progress.remaining), (1, 0))
        new = self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)]) - triggers
        self.assertEqual(len(new), 1)
        self.assertEqual(batch.state, "running")
        self.run_runner()
        self.assertEqual(batch.state, "done")

    def test_document_sent_by_hand_meanwhile_is_not_sent_again(self):
        customer = self.make_customer()
        by_hand = self.make_typed_invoice("none", customer)
        other = self.make_typed_invoice("none", customer)
        _action, batch = self.push_now(self.open_wizard())
        self.send(by_hand)  # "Send to Sage" on a queued invoice
        self.run_runner()
        self.assertOnceInSage(by_hand)
        self.assertOnceInSage(other)
        line = batch.line_ids.filtered(lambda line: line.move_id == by_hand)
        self.assertEqual((line.state, line.sage_number), ("sent", by_hand.sage_number))

    def test_token_refused_while_sending_is_renewed_and_nothing_doubled(self):
        customer = self.make_customer()
        self.send(self.make_typed_invoice("none", customer))  # the contact exists
        moves = self.env["account.move"]
        for _index in range(4):
            moves |= self.make_typed_invoice("none", customer)
        self.push_now(self.open_wizard())
        # Sage drops every access token; Odoo still believes its token is fresh.
        self.sandbox.expire_access_tokens()
        self.run_runner()
        self.assertEqual(set(moves.mapped("sage_state")), {"sent"})
        for move in moves:
            self.assertOnceInSage(move)


@tagged("post_install", "-at_install")
class TestPushAllRecovery(PushAllCase):
    def test_killed_worker_then_restart_pushes_each_document_exactly_once(self):
        customers = [self.make_customer() for _index in range(3)]
        moves = self.env["account.move"]
        for index in range(6):
            moves |= self.make_typed_invoice("none", customers[index % 3])
        _action, batch = self.push_now(self.open_wizard())

        # Worker A: claims the chunk, prepares it (idempotency ids stored, moves
        # and lines in "sending", committed in production) and starts sending...
        with batch._sage_runner_lock() as acquired, sage_push_batch._PushSession(batch) as session:
            self.assertTrue(acquired)
            lines = batch._sage_claim_lines(10)
            _finished, jobs = lines._sage_prepare_chunk(session)
        client = session.main_client
        self.assertEqual(len(jobs), 6)
        self.assertEqual(set(moves.mapped("sage_state")), {"sending"})
        self.assertTrue(all(moves.mapped("sage_idempotency_id")))
        # ... Sage saves three documents, a fourth one too but the answer is lost ...
        in_sage = len(self.sage_records("sales_invoices"))
        for job in jobs[:3]:
            self.assertTrue(send_document(client, job).sent)
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        send_document(client, jobs[3])
        # ... and the worker is killed: no result is written to Odoo.
        self.assertEqual(len(self.sage_records("sales_invoices")), in_sage + 4)
        self.assertEqual(set(batch.line_ids.mapped("state")), {"sending"})

        # Worker B (restart): finds the interrupted lines and checks Sage first.
        writes = self.sandbox.stats()["by_route"].get("POST /sales_invoices", 0)
        self.run_runner()
        self.assertEqual(batch.state, "done")
        self.assertEqual(set(batch.line_ids.mapped("state")), {"sent"})
        for move in moves:
            self.assertEqual(move.sage_state, "sent")
            self.assertOnceInSage(move)
        self.assertEqual(len(self.sage_records("sales_invoices")), in_sage + 6)
        self.assertEqual(len(set(moves.mapped("sage_id"))), 6)
        # Only the two documents Sage never saw were posted again.
        self.assertEqual(
            self.sandbox.stats()["by_route"].get("POST /sales_invoices", 0) - writes, 2
        )
        found = moves.filtered(lambda move: any("lost answer" in m.body for m in move.message_ids))
        self.assertEqual(len(found), 4)

    def test_result_applied_before_the_crash_is_not_sent_again(self):
        invoice = self.make_typed_invoice("none")
        _action, batch = self.push_now(self.open_wizard())
        with batch._sage_runner_lock(), sage_push_batch._PushSession(batch) as session:
            lines = batch._sage_claim_lines(10)
            _finished, jobs = lines._sage_prepare_chunk(session)
        client = session.main_client
        invoice._sage_apply_push_result(send_document(client, jobs[0]))
        # Killed after the move's commit, before the line's.
        self.assertEqual(batch.line_ids.state, "sending")
        writes = self.sage_writes()
        self.run_runner()
        self.assertEqual(self.sage_writes(), writes)
        self.assertEqual(batch.line_ids.state, "sent")
        self.assertEqual(batch.line_ids.sage_number, invoice.sage_number)
        self.assertOnceInSage(invoice)

    def test_live_worker_holds_the_batch_and_a_second_runner_skips_it(self):
        customer = self.make_customer()
        moves = self.make_typed_invoice("none", customer)
        moves |= self.make_typed_invoice("none", customer)
        _action, batch = self.push_now(self.open_wizard())
        writes = self.sage_writes()
        # Worker A is alive on another connection (it holds the batch's lock).
        with self.env.registry.cursor() as other_cr:
            other_cr.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)",
                (sage_push_batch.RUNNER_LOCK_KEY, batch.id),
            )
            self.assertTrue(other_cr.fetchone()[0])
            self.assertEqual(self.env["sage.push.batch"]._cron_sage_push(), 0)
            self.assertEqual(self.sage_writes(), writes)
            self.assertEqual(set(batch.line_ids.mapped("state")), {"queued"})
            other_cr.rollback()
        self.run_runner()
        self.assertEqual(set(moves.mapped("sage_state")), {"sent"})

    def test_document_being_sent_by_someone_else_waits_without_spinning(self):
        customer = self.make_customer()
        busy = self.make_typed_invoice("none", customer)
        free = self.make_typed_invoice("none", customer)
        _action, batch = self.push_now(self.open_wizard())
        # Someone's interactive push is in its HTTP call.
        busy.write({"sage_state": "sending", "sage_sending_since": fields.Datetime.now()})
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)])
        self.run_runner()
        self.assertEqual(free.sage_state, "sent")
        self.assertEqual(busy.sage_state, "sending")
        line = batch.line_ids.filtered(lambda line: line.move_id == busy)
        self.assertEqual(line.state, "queued")
        self.assertEqual(batch.state, "running")
        new_triggers = (
            self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)]) - triggers
        )
        self.assertTrue(new_triggers, "the runner looks again later")
        self.assertGreater(min(new_triggers.mapped("call_at")), busy.sage_sending_since)
