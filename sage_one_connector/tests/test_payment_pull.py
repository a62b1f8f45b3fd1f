"""Payments back from Sage, against the sandbox: statuses, voids, write-off
protection, paging, optional payment registration and idempotent pulls."""

import uuid
from datetime import timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger
from odoo.tools.safe_eval import safe_eval

from .common import SageSandboxCase

INVOICE_FEED = "GET /sales_invoices"
CREDIT_NOTE_FEED = "GET /sales_credit_notes"
PAYMENT_FEED = "GET /contact_payments"
ALLOCATION_FEED = "GET /contact_allocations"
INVOICE_REREAD = "GET /sales_invoices/{id}"
# Expected warnings of the failure tests.
QUIET_FAILURES = mute_logger(
    "odoo.addons.sage_one_connector.sage_api.client",
    "odoo.addons.sage_one_connector.models.sage_connection_pull",
)


class PaymentPullCase(SageSandboxCase):
    """Pushed invoices without the Send-to-Sage code: the Sage document is
    created with the client and linked to a posted Odoo invoice by hand."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        client = cls.connection._sage_client()
        contact = client.create_contact(
            {"name": "Payment Pull Customer", "contact_type_ids": ["CUSTOMER"]},
            idempotency_id=uuid.uuid4().hex,
        )
        cls.sage_contact_id = contact["id"]
        cls.sage_revenue_ledger_id = cls.connection.default_ledger_id.sage_id

    def push(self, amount=100.0, move_type="out_invoice"):
        """A posted Odoo document with its twin in the sandbox."""
        move = self.init_invoice(move_type, amounts=[amount], taxes=[], post=True)
        client = self.connection._sage_client()
        if move_type == "out_refund":
            sage = client.create_sales_credit_note(
                {
                    "contact_id": self.sage_contact_id,
                    "date": fields.Date.to_string(move.invoice_date),
                    "reference": move.name,
                    "credit_note_lines": [self._sage_line(amount)],
                },
                idempotency_id=uuid.uuid4().hex,
            )
        else:
            sage = client.create_sales_invoice(
                {
                    "contact_id": self.sage_contact_id,
                    "date": fields.Date.to_string(move.invoice_date),
                    "reference": move.name,
                    "invoice_lines": [self._sage_line(amount)],
                },
                idempotency_id=uuid.uuid4().hex,
            )
        move.sudo().write(
            {
                "sage_id": sage["id"],
                "sage_number": sage["displayed_as"],
                "sage_state": "sent",
                "sage_connection_id": self.connection.id,
                "sage_payment_status": "unpaid",
                "sage_outstanding_amount": amount,
            }
        )
        return move

    def _sage_line(self, amount):
        return {
            "description": "Consulting",
            "ledger_account_id": self.sage_revenue_ledger_id,
            "quantity": 1,
            "unit_price": amount,
            "tax_rate_id": "GB_ZERO",
            "tax_amount": 0,
        }

    def pull(self, connection=None):
        stats = (connection or self.connection)._sage_as_system()._sage_pull_payments()
        self.env.invalidate_all()
        return stats

    def sage_invoice(self, move):
        return self.sandbox.state.sales_invoices[move.sage_id]


@tagged("post_install", "-at_install")
class TestPaymentPull(PaymentPullCase):
    def test_full_payment_marks_the_invoice_paid(self):
        move = self.push(120.0)
        self.sandbox.record_payment(move.sage_id, "120.00", date="2026-03-02")
        self.pull()
        self.assertEqual(move.sage_payment_status, "paid")
        self.assertEqual(move.sage_outstanding_amount, 0.0)
        self.assertEqual(move.sage_last_paid_date, fields.Date.to_date("2026-03-02"))
        # Registering payments in Odoo is off by default: Odoo's own state is untouched.
        self.assertFalse(self.connection.sage_register_payments)
        self.assertEqual(move.payment_state, "not_paid")
        self.assertFalse(move.matched_payment_ids)
        self.assertTrue(self.connection.sage_payments_pulled_until)
        self.assertFalse(self.connection.sage_payments_pull_error)

    def test_partial_then_full_payment(self):
        move = self.push(100.0)
        self.sandbox.record_payment(move.sage_id, "40.00", date="2026-03-01")
        self.pull()
        self.assertEqual(move.sage_payment_status, "part_paid")
        self.assertAlmostEqual(move.sage_outstanding_amount, 60.0)
        self.assertEqual(move.sage_last_paid_date, fields.Date.to_date("2026-03-01"))
        self.sandbox.record_payment(move.sage_id, "60.00", date="2026-03-05")
        self.pull()
        self.assertEqual(move.sage_payment_status, "paid")
        self.assertEqual(move.sage_outstanding_amount, 0.0)
        self.assertEqual(move.sage_last_paid_date, fields.Date.to_date("2026-03-05"))

    def test_void_in_sage_is_flagged_for_financial_managers(self):
        move = self.push(80.0)
        other = self.push(80.0)
        self.sandbox.void(move.sage_id, "Raised in error")
        notes_before = len(move.message_ids)
        self.pull()
        self.assertEqual(move.sage_payment_status, "void")
        self.assertEqual(move.sage_void_reason, "Raised in error")
        self.assertEqual(move.sage_outstanding_amount, 0.0)
        self.assertEqual(len(move.message_ids), notes_before + 1)
        self.assertIn("Raised in error", move.message_ids[0].body)
        self.assertEqual(other.sage_payment_status, "unpaid")
        # The "Voided in Sage" list shows it to financial managers.
        action = self.env.ref("sage_one_connector.account_move_action_sage_voided")
        voided = (
            self.env["account.move"]
            .with_user(self.manager_user)
            .search([*safe_eval(action.domain), ("company_id", "=", self.env.company.id)])
        )
        self.assertIn(move, voided)
        self.assertNotIn(other, voided)
        menu = self.env.ref("sage_one_connector.menu_sage_voided")
        self.assertIn(
            self.env.ref("sage_one_connector.group_sage_financial_manager"), menu.groups_id
        )
        # A second pull does not post the note again.
        self.pull()
        self.assertEqual(len(move.message_ids), notes_before + 1)

    def test_credit_note_void(self):
        refund = self.push(30.0, move_type="out_refund")
        self.sandbox.void(refund.sage_id, "Duplicate")
        self.sandbox.reset_stats()
        self.pull()
        self.assertEqual(refund.sage_payment_status, "void")
        self.assertEqual(refund.sage_void_reason, "Duplicate")
        self.assertEqual(self.sandbox.stats()["by_route"].get(CREDIT_NOTE_FEED), 1)

    def test_unknown_sage_documents_are_ignored(self):
        move = self.push(50.0)
        client = self.connection._sage_client()
        foreign = client.create_sales_invoice(
            {
                "contact_id": self.sage_contact_id,
                "date": "2026-03-01",
                "invoice_lines": [self._sage_line(10.0)],
            },
            idempotency_id=uuid.uuid4().hex,
        )
        self.sandbox.record_payment(foreign["id"], "10.00")
        stats = self.pull()
        self.assertGreaterEqual(stats["changes_in_sage"], 2)
        self.assertEqual(stats["updated"], 0)
        self.assertEqual(move.sage_payment_status, "unpaid")
        self.assertFalse(self.env["account.move"].search_count([("sage_id", "=", foreign["id"])]))

    def test_payment_found_even_when_sage_keeps_the_invoice_timestamp(self):
        """Sage does not document that a receipt bumps the invoice's
        updated_at: the receipts feed alone must be enough."""
        move = self.push(100.0)
        self.pull()
        invoice = self.sage_invoice(move)
        frozen_at = invoice["updated_at"] - timedelta(days=30)
        self.sandbox.record_payment(move.sage_id, "100.00")
        with self.sandbox.lock:
            invoice["updated_at"] = invoice["created_at"] = frozen_at
        self.sandbox.reset_stats()
        stats = self.pull()
        self.assertEqual(move.sage_payment_status, "paid")
        self.assertEqual(stats["reread"], 1)
        self.assertEqual(self.sandbox.stats()["by_route"].get(INVOICE_REREAD), 1)

    def test_overlap_window_absorbs_clock_skew(self):
        """Sage's clock two minutes behind ours: a payment made right after a
        pull is stamped before that pull's watermark, and still found."""
        move = self.push(100.0)
        self.sandbox.advance_clock(-120)
        self.addCleanup(self.sandbox.advance_clock, 120)
        self.pull()
        self.sandbox.record_payment(move.sage_id, "100.00")
        self.assertLess(
            self.sage_invoice(move)["updated_at"].replace(tzinfo=None),
            self.connection.sage_payments_pulled_until,
        )
        self.pull()
        self.assertEqual(move.sage_payment_status, "paid")

    def test_cost_follows_changes_not_invoices(self):
        moves = [self.push(10.0) for _index in range(4)]
        self.pull()
        self.sandbox.record_payment(moves[0].sage_id, "10.00")
        self.sandbox.reset_stats()
        stats = self.pull()
        by_route = self.sandbox.stats()["by_route"]
        # Invoices, receipts and allocations feeds; no credit note was ever
        # pushed, so that feed is not read; no per-invoice call.
        self.assertEqual(by_route.get(INVOICE_FEED), 1)
        self.assertEqual(by_route.get(PAYMENT_FEED), 1)
        self.assertEqual(by_route.get(ALLOCATION_FEED), 1)
        self.assertFalse(by_route.get(CREDIT_NOTE_FEED))
        self.assertFalse(by_route.get(INVOICE_REREAD))
        self.assertEqual(stats["sage_calls"], 3)
        self.assertEqual(stats["updated"], 1)

    def test_second_pull_changes_nothing(self):
        paid, part_paid, voided, untouched = (self.push(100.0) for _index in range(4))
        self.sandbox.record_payment(paid.sage_id, "100.00")
        self.sandbox.record_payment(part_paid.sage_id, "25.00")
        self.sandbox.void(voided.sage_id, "Wrong customer")
        self.connection.sage_register_payments = True
        connection = self.connection.with_context(tracking_disable=False, mail_notrack=False)
        self.pull(connection)
        self.env.cr.precommit.run()  # writes the tracking messages
        moves = paid | part_paid | voided | untouched
        self.assertEqual(
            moves.mapped("sage_payment_status"), ["paid", "part_paid", "void", "unpaid"]
        )
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE account_move SET write_date = '2000-01-01' WHERE id IN %s", [tuple(moves.ids)]
        )
        self.env.invalidate_all()
        messages = {move: len(move.message_ids) for move in moves}
        payments = self.env["account.payment"].search_count([])
        sage_writes = self.sandbox.stats()["writes"]
        stats = self.pull(connection)
        self.env.cr.precommit.run()
        self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(stats["updated"], 0)
        self.assertEqual(stats["registered"], 0)
        for move in moves:
            self.assertEqual(move.write_date, fields.Datetime.to_datetime("2000-01-01"))
            self.assertEqual(len(move.message_ids), messages[move])
        self.assertEqual(self.env["account.payment"].search_count([]), payments)
        self.assertEqual(self.sandbox.stats()["writes"], sage_writes)

    @QUIET_FAILURES
    def test_watermark_kept_when_the_pull_fails(self):
        move = self.push(100.0)
        self.pull()
        watermark = self.connection.sage_payments_pulled_until
        self.sandbox.record_payment(move.sage_id, "100.00")
        self.sandbox.fail_next(1, status=403, path_contains="contact_payments")
        notes = len(self.connection.message_ids)
        done, message = self.connection._sage_pull_payments_safely()
        self.assertFalse(done)
        self.assertIn("403", message)
        self.env.invalidate_all()
        self.assertEqual(self.connection.sage_payments_pulled_until, watermark)
        self.assertIn("403", self.connection.sage_payments_pull_error)
        self.assertEqual(len(self.connection.message_ids), notes + 1)
        # Nothing half-applied: the invoice update was rolled back with the pull.
        self.assertEqual(move.sage_payment_status, "unpaid")
        # Still failing: the error is updated, no second note.
        self.sandbox.fail_next(1, status=403, path_contains="contact_payments")
        self.connection._sage_pull_payments_safely()
        self.env.invalidate_all()
        self.assertEqual(len(self.connection.message_ids), notes + 1)
        # Recovery clears the error and applies the payment.
        self.assertTrue(self.connection._sage_pull_payments_safely()[0])
        self.env.invalidate_all()
        self.assertFalse(self.connection.sage_payments_pull_error)
        self.assertEqual(move.sage_payment_status, "paid")


@tagged("post_install", "-at_install")
class TestPaymentPullPaging(PaymentPullCase):
    """Its own sandbox: 205 changes would make every other pull page too."""

    def test_paging_over_many_changes(self):
        moves = self.env["account.move"].create(
            [
                {
                    "move_type": "out_invoice",
                    "partner_id": self.partner_a.id,
                    "invoice_date": "2026-03-01",
                    "invoice_line_ids": [
                        Command.create({"name": "Line", "price_unit": 10.0 + index, "tax_ids": []})
                    ],
                }
                for index in range(205)
            ]
        )
        moves.action_post()
        client = self.connection._sage_client()
        for move in moves:
            sage = client.create_sales_invoice(
                {
                    "contact_id": self.sage_contact_id,
                    "date": "2026-03-01",
                    "invoice_lines": [self._sage_line(move.amount_total)],
                },
                idempotency_id=uuid.uuid4().hex,
            )
            move.write(
                {
                    "sage_id": sage["id"],
                    "sage_state": "sent",
                    "sage_connection_id": self.connection.id,
                    "sage_payment_status": "unpaid",
                }
            )
        for move in moves:
            self.sandbox.record_payment(move.sage_id, str(move.amount_total))
        self.sandbox.reset_stats()
        stats = self.pull()
        self.assertEqual(set(moves.mapped("sage_payment_status")), {"paid"})
        self.assertEqual(stats["updated"], 205)
        by_route = self.sandbox.stats()["by_route"]
        # 205 changed invoices and 205 receipts: two pages of 200 each, no re-reads.
        self.assertEqual(by_route.get(INVOICE_FEED), 2)
        self.assertEqual(by_route.get(PAYMENT_FEED), 2)
        self.assertFalse(by_route.get(INVOICE_REREAD))


@tagged("post_install", "-at_install")
class TestPaymentPullWriteOff(PaymentPullCase):
    def test_written_off_statuses_are_never_overwritten(self):
        written_off, paid_written_off, sender_written_off, plain = (
            self.push(100.0) for _index in range(4)
        )
        written_off.with_user(self.manager_user).action_sage_mark_written_off()
        paid_written_off.with_user(self.manager_user).action_sage_mark_paid_written_off()
        # The Send-to-Sage code records a write-off made in Sage this way.
        self.sandbox.write_off(sender_written_off.sage_id)
        sender_written_off.sudo().sage_payment_status = "written_off"
        self.sandbox.record_payment(written_off.sage_id, "100.00")
        self.sandbox.void(paid_written_off.sage_id, "Cancelled")
        self.sandbox.write_off(plain.sage_id)
        stats = self.pull()
        self.assertEqual(written_off.sage_payment_status, "written_off")
        self.assertEqual(written_off.sage_outstanding_amount, 100.0)
        self.assertEqual(paid_written_off.sage_payment_status, "paid_written_off")
        self.assertFalse(paid_written_off.sage_void_reason)
        self.assertEqual(sender_written_off.sage_payment_status, "written_off")
        self.assertEqual(stats["protected"], 3)
        # Not protected in Odoo: Sage's view (the write-off settled it) wins.
        self.assertEqual(plain.sage_payment_status, "paid")

    def test_mark_many_invoices_at_once(self):
        moves = self.push(10.0) | self.push(20.0) | self.push(30.0)
        action = self.env.ref("sage_one_connector.account_move_action_sage_mark_paid_written_off")
        result = (
            action.with_user(self.manager_user)
            .with_context(active_model="account.move", active_ids=moves.ids)
            .run()
        )
        self.assertEqual(result["tag"], "display_notification")
        self.assertEqual(set(moves.mapped("sage_payment_status")), {"paid_written_off"})
        moves.with_user(self.manager_user).action_sage_mark_written_off()
        self.assertEqual(set(moves.mapped("sage_payment_status")), {"written_off"})

    def test_only_financial_managers_may_write_off(self):
        move = self.push(10.0)
        team_move = move.with_user(self.team_user)
        with self.assertRaises(AccessError):
            team_move.action_sage_mark_written_off()
        with self.assertRaises(AccessError):
            team_move.action_sage_mark_paid_written_off()
        with self.assertRaises(AccessError):
            team_move.write({"sage_payment_status": "written_off"})
        action = self.env.ref("sage_one_connector.account_move_action_sage_mark_written_off")
        with self.assertRaises(AccessError):
            action.with_user(self.team_user).with_context(
                active_model="account.move", active_ids=move.ids
            ).run()
        with self.assertRaises(AccessError):
            team_move.write({"sage_payment_status": "paid_written_off"})
        self.assertEqual(move.sage_payment_status, "unpaid")
        # Ordinary statuses stay writable by the team (the push records them).
        other = self.push(10.0).with_user(self.team_user)
        other.write({"sage_payment_status": "paid"})
        self.assertEqual(other.sage_payment_status, "paid")

    def test_write_off_refuses_wrong_documents_and_changes_nothing(self):
        posted = self.push(10.0)
        draft = self.init_invoice("out_invoice", amounts=[5.0], taxes=[])
        bill = self.init_invoice("in_invoice", amounts=[5.0], taxes=[], post=True)
        manager_moves = (posted | draft | bill).with_user(self.manager_user)
        with self.assertRaisesRegex(UserError, draft.display_name):
            manager_moves.action_sage_mark_written_off()
        self.assertEqual(posted.sage_payment_status, "unpaid")
        self.assertFalse(draft.sage_payment_status)
        with self.assertRaises(UserError):
            self.env["account.move"].with_user(self.manager_user).action_sage_mark_written_off()


@tagged("post_install", "-at_install")
class TestPaymentPullRegistration(PaymentPullCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.connection.write(
            {
                "sage_register_payments": True,
                "sage_payment_journal_id": cls.company_data["default_journal_bank"].id,
            }
        )

    def test_payments_registered_once_per_sage_amount(self):
        move = self.push(100.0)
        self.sandbox.record_payment(move.sage_id, "30.00", date="2026-03-01")
        stats = self.pull()
        self.assertEqual(stats["registered"], 1)
        self.assertEqual(move.payment_state, "partial")
        self.assertAlmostEqual(move.amount_residual, 70.0)
        payment = move.matched_payment_ids
        self.assertEqual(len(payment), 1)
        self.assertAlmostEqual(payment.amount, 30.0)
        self.assertEqual(payment.date, fields.Date.to_date("2026-03-01"))
        self.assertEqual(payment.journal_id, self.company_data["default_journal_bank"])
        # Same Sage state, pulled again: nothing new.
        self.assertEqual(self.pull()["registered"], 0)
        self.assertEqual(len(move.matched_payment_ids), 1)
        # The rest is paid in Sage.
        self.sandbox.record_payment(move.sage_id, "70.00", date="2026-03-04")
        self.pull()
        self.assertEqual(len(move.matched_payment_ids), 2)
        self.assertIn(move.payment_state, ("paid", "in_payment"))
        self.assertAlmostEqual(move.amount_residual, 0.0)
        self.assertAlmostEqual(move.sage_paid_mirrored_amount, 100.0)

    def test_amount_already_settled_in_odoo_is_not_registered_again(self):
        move = self.push(100.0)
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids
        ).create({"amount": 100.0}).action_create_payments()
        self.assertIn(move.payment_state, ("paid", "in_payment"))
        self.sandbox.record_payment(move.sage_id, "100.00")
        stats = self.pull()
        self.assertEqual(stats["registered"], 0)
        self.assertEqual(len(move.matched_payment_ids), 1)
        self.assertEqual(move.sage_payment_status, "paid")
        # Unreconciling the Odoo payment later does not make the pull pay it twice.
        move.line_ids.remove_move_reconcile()
        self.assertEqual(move.payment_state, "not_paid")
        self.assertEqual(self.pull()["registered"], 0)
        self.assertEqual(move.payment_state, "not_paid")

    def test_no_registration_for_protected_or_void_documents(self):
        written_off, voided = self.push(50.0), self.push(50.0)
        written_off.with_user(self.manager_user).action_sage_mark_written_off()
        self.sandbox.record_payment(written_off.sage_id, "50.00")
        self.sandbox.void(voided.sage_id, "Wrong amount")
        stats = self.pull()
        self.assertEqual(stats["registered"], 0)
        self.assertFalse((written_off | voided).matched_payment_ids)


@tagged("post_install", "-at_install")
class TestPaymentPullEntryPoints(PaymentPullCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.setup_other_company(name="Second Sage Company")["company"]
        second_business = cls.sandbox.add_business(cls.sage_user_id, "Second Trading Ltd")
        cls.connection_2 = cls._sage_connect(cls.company_2, business_id=second_business)
        cls.invoicing_user = new_test_user(
            cls.env,
            login="plain_invoicing",
            groups="account.group_account_invoice",
            company_id=cls.env.company.id,
            company_ids=[(6, 0, cls.env.company.ids)],
        )

    @QUIET_FAILURES
    def test_cron_continues_after_a_failing_business(self):
        move = self.push(100.0)
        self.sandbox.record_payment(move.sage_id, "100.00")
        self.assertLess(self.connection.id, self.connection_2.id)
        # The first connection's first feed call is refused, the second's works.
        self.sandbox.fail_next(1, status=403, path_contains="sales_invoices")
        self.env["sage.connection"]._cron_sage_pull_payments()
        self.env.invalidate_all()
        self.assertTrue(self.connection.sage_payments_pull_error)
        self.assertFalse(self.connection.sage_payments_pulled_until)
        self.assertEqual(move.sage_payment_status, "unpaid")
        self.assertFalse(self.connection_2.sage_payments_pull_error)
        self.assertTrue(self.connection_2.sage_payments_pulled_until)
        # Next run: both fine.
        self.env["sage.connection"]._cron_sage_pull_payments()
        self.env.invalidate_all()
        self.assertFalse(self.connection.sage_payments_pull_error)
        self.assertEqual(move.sage_payment_status, "paid")

    def test_cron_record(self):
        cron = self.env.ref("sage_one_connector.ir_cron_sage_pull_payments")
        self.assertEqual((cron.interval_number, cron.interval_type), (15, "minutes"))
        self.assertEqual(cron.code.strip(), "model._cron_sage_pull_payments()")

    def test_button_and_menu_for_the_accounts_team(self):
        move = self.push(100.0)
        self.sandbox.record_payment(move.sage_id, "100.00")
        result = self.connection.with_user(self.team_user).action_sage_pull_payments()
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(move.sage_payment_status, "paid")
        # The Sage menu entry pulls the connections of the selected companies.
        action = self.env.ref("sage_one_connector.sage_connection_action_pull_payments")
        result = action.with_user(self.team_user).run()
        self.assertEqual(result["params"]["type"], "success")

    def test_button_refused_outside_the_sage_groups(self):
        with self.assertRaises(AccessError):
            self.connection.with_user(self.invoicing_user).action_sage_pull_payments()
        self.assertFalse(self.connection.sage_payments_pulled_until)

    @QUIET_FAILURES
    def test_button_reports_a_failure_and_keeps_it_on_the_connection(self):
        self.sandbox.fail_next(1, status=403, path_contains="sales_invoices")
        result = self.connection.with_user(self.team_user).action_sage_pull_payments()
        self.assertEqual(result["params"]["type"], "danger")
        self.assertIn("403", result["params"]["message"])
        self.assertIn("403", self.connection.sage_payments_pull_error)

    def test_concurrent_pull_is_skipped(self):
        move = self.push(100.0)
        self.sandbox.record_payment(move.sage_id, "100.00")
        with patch.object(type(self.connection), "_sage_lock_for_pull", return_value=False):
            result = self.connection.with_user(self.team_user).action_sage_pull_payments()
        self.assertEqual(result["params"]["type"], "danger")
        self.assertIn("already running", result["params"]["message"])
        self.assertEqual(move.sage_payment_status, "unpaid")
        self.assertFalse(self.connection.sage_payments_pulled_until)
        self.assertFalse(self.connection.sage_payments_pull_error)

    def test_button_without_connection(self):
        self.connection.sudo().state = "needs_reconnect"
        with self.assertRaisesRegex(UserError, "connect"):
            self.connection.with_user(self.team_user).action_sage_pull_payments()
