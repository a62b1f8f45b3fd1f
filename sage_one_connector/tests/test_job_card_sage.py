"""A job's invoice pushed to the Sage sandbox completes the lead."""

import contextlib

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import SageSandboxCase
from .test_job_card import JobCardCommon


@tagged("post_install", "-at_install")
class TestJobCardSage(JobCardCommon, SageSandboxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_job_card_data()
        # The job card products carry the company's default sale tax: make it a
        # UK standard-rated tax known to Sage (idempotent if the base did it).
        cls.tax_sale_a.write(
            {"amount": 20.0, "sage_tax_rate_id": cls.sage_tax_rate("GB_STANDARD").id}
        )

    def push_to_sage(self, invoice):
        """Send the posted invoice to the sandbox, as the accounts team would.

        Falls back on calling the hook when the Send-to-Sage code is absent.
        """
        if hasattr(self.env["account.move"], "action_sage_send"):
            invoice.with_user(self.team_user).action_sage_send()
        else:  # pragma: no cover - only before the push code lands
            invoice._sage_after_sent()

    def test_push_to_sage_completes_and_wins_the_lead(self):
        lead = self.make_lead("Boiler service, Harbour Bakery")
        self.run_server_action(lead)
        invoice = lead.sage_invoice_id
        self.assertEqual(lead.sage_invoicing_state, "active")

        invoice.action_post()
        self.assertEqual(lead.sage_invoicing_state, "active", "posting alone does not complete")
        self.push_to_sage(invoice)

        if hasattr(self.env["account.move"], "action_sage_send"):
            self.assertEqual(invoice.sage_state, "sent", invoice.sage_last_error)
            sage_invoice = self.sandbox.state.find_artefact(invoice.sage_id)
            self.assertEqual(invoice.amount_total, 240.0)  # (2.5 h × 60 + 4 × 12.5) + 20 %
            self.assertEqual(float(sage_invoice["total_amount"]), invoice.amount_total)
        self.assertEqual(lead.sage_invoicing_state, "completed")
        self.assertEqual(lead.probability, 100)
        self.assertTrue(lead.stage_id.is_won)
        with self.assertRaisesRegex(UserError, "is completed: its invoice is already in Sage"):
            lead.action_sage_update_invoice()

    def test_failed_push_leaves_the_lead_active(self):
        if not hasattr(self.env["account.move"], "action_sage_send"):
            self.skipTest("the Send-to-Sage code is not there yet")
        lead = self.make_lead("Roof repair")
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        invoice.action_post()
        # Sage refuses the document (validation error): nothing reached Sage.
        self.sandbox.fail_next(1, status=422, path_contains="POST /sales_invoices")
        # The push may report the failure as an error or in its notification.
        with contextlib.suppress(UserError):
            invoice.with_user(self.team_user).action_sage_send()
        self.assertNotEqual(invoice.sage_state, "sent")
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertNotEqual(lead.probability, 100)
