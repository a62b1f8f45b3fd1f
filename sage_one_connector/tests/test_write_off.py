"""Write-off: the open balance becomes a Bad Debts credit note allocated to the invoice."""

from decimal import Decimal

from odoo.tests import tagged

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestWriteOff(SagePushCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(self.clear_sandbox_faults)
        self.clear_sandbox_faults()

    def test_write_off_of_the_open_balance(self):
        invoice = self.make_invoice()
        self.send(invoice, self.team_user)
        self.sandbox.record_payment(invoice.sage_id, "100.00")

        action = invoice.with_user(self.manager_user).action_sage_write_off()

        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(invoice.sage_payment_status, "written_off")
        self.assertEqual(invoice.sage_write_off_state, "done")
        self.assertEqual(invoice.sage_outstanding_amount, 0)
        self.assertEqual(invoice.sage_write_off_amount, 260)
        credit_note = self.sandbox.state.sales_credit_notes[invoice.sage_write_off_id]
        self.assertEqual(credit_note["contact"]["id"], self.sage_invoice(invoice)["contact"]["id"])
        self.assertEqual(credit_note["total_amount"], Decimal("260.00"))
        self.assertEqual(credit_note["tax_amount"], Decimal("0"))
        [line] = credit_note["credit_note_lines"]
        self.assertEqual(line["ledger_account"]["id"], self.ledger_8100.sage_id)
        self.assertEqual(line["tax_rate"]["id"], "GB_NO_TAX")
        self.assertEqual(line["net_amount"], Decimal("260.00"))
        self.assertIn(invoice.sage_number, line["description"])
        self.assertEqual(credit_note["reference"], f"WO {invoice.sage_number}")
        self.assertEqual(invoice.sage_write_off_number, credit_note["credit_note_number"])
        # Allocated: the invoice is settled in Sage.
        sage_invoice = self.sage_invoice(invoice)
        self.assertEqual(sage_invoice["outstanding_amount"], Decimal(0))
        self.assertEqual(sage_invoice["status"]["id"], "PAID")
        self.assertEqual(credit_note["outstanding_amount"], Decimal(0))
        self.assertTrue(any("Written off in Sage" in m.body for m in invoice.message_ids))
        # Odoo's own accounting is untouched: the write-off lives in Sage.
        self.assertEqual(invoice.sage_state, "sent")

    def test_write_off_survives_dropped_connections_exactly_once(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_notes = len(self.sage_records("sales_credit_notes"))
        allocations = len(self.sage_records("contact_allocations"))
        self.sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_credit_notes")
        self.sandbox.fail_next(1, "drop_after_save", path_contains="POST /contact_allocations")
        invoice.with_user(self.manager_user).action_sage_write_off()
        self.assertEqual(invoice.sage_payment_status, "written_off")
        self.assertEqual(len(self.sage_records("sales_credit_notes")), credit_notes + 1)
        self.assertEqual(len(self.sage_records("contact_allocations")), allocations + 1)
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal(0))

    def test_failed_allocation_is_retried_without_a_second_credit_note(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_notes = len(self.sage_records("sales_credit_notes"))
        self.sandbox.fail_next(10, 503, path_contains="POST /contact_allocations")
        invoice.with_user(self.manager_user).action_sage_write_off()
        self.assertEqual(invoice.sage_write_off_state, "unallocated")
        self.assertNotEqual(invoice.sage_payment_status, "written_off")
        self.assertIn("could not be allocated", invoice.sage_last_error)
        self.clear_sandbox_faults()
        invoice.with_user(self.manager_user).action_sage_write_off()
        self.assertEqual(invoice.sage_write_off_state, "done")
        self.assertEqual(invoice.sage_payment_status, "written_off")
        self.assertEqual(len(self.sage_records("sales_credit_notes")), credit_notes + 1)
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal(0))
