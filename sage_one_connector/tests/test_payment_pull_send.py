"""End to end: documents sent by Send to Sage, paid and written off in Sage,
then pulled back."""

from odoo.tests import tagged

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestPaymentPullAfterSend(SagePushCase):
    def pull(self):
        stats = self.connection._sage_as_system()._sage_pull_payments()
        self.env.invalidate_all()
        return stats

    def test_sent_invoice_paid_then_written_off_in_sage(self):
        self.connection.write(
            {
                "sage_register_payments": True,
                "sage_payment_journal_id": self.company_data["default_journal_bank"].id,
            }
        )
        invoice = self.make_invoice()  # 360.00 GBP
        self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.sandbox.record_payment(invoice.sage_id, "160.00", date="2026-02-01")
        stats = self.pull()
        self.assertEqual(stats["updated"], 1)
        self.assertEqual(invoice.sage_payment_status, "part_paid")
        self.assertAlmostEqual(invoice.sage_outstanding_amount, 200.0)
        self.assertEqual(stats["registered"], 1)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertAlmostEqual(invoice.amount_residual, 200.0)

        # The rest is written off through Odoo: Sage now says PAID (credit
        # note allocated), Odoo says Written Off, and the pull keeps it so,
        # without registering the credit note's 200.00 as a payment.
        invoice.with_user(self.manager_user).action_sage_write_off()
        self.assertEqual(invoice.sage_payment_status, "written_off")
        self.assertEqual(self.sage_invoice(invoice)["status"]["id"], "PAID")
        payments = invoice.matched_payment_ids
        stats = self.pull()
        self.assertEqual(invoice.sage_payment_status, "written_off")
        self.assertEqual(stats["protected"], 1)
        self.assertEqual(stats["registered"], 0)
        self.assertEqual(invoice.matched_payment_ids, payments)

    def test_sent_credit_note_allocation_is_pulled(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_note = self.make_credit_note(invoice, quantity=1)
        self.send(credit_note)
        self.assertEqual(credit_note.sage_state, "sent")
        self.sandbox.reset_stats()
        self.pull()
        # The credit note feed is read once a credit note has been pushed.
        self.assertEqual(self.sandbox.stats()["by_route"].get("GET /sales_credit_notes"), 1)
        # Allocated to the invoice in Sage: both sides reflect it.
        self.assertEqual(credit_note.sage_payment_status, "paid")
        self.assertEqual(invoice.sage_payment_status, "part_paid")
