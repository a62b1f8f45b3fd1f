"""A job's invoice pushed to the Sage sandbox completes the lead."""

import contextlib

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

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

    def invoice_job(self, name):
        """Generate (server action) and post the invoice of a new job."""
        lead = self.make_lead(name)
        self.run_server_action(lead)
        invoice = lead.sage_invoice_id
        self.assertEqual(lead.sage_invoicing_state, "active")
        invoice.action_post()
        self.assertEqual(lead.sage_invoicing_state, "active", "posting alone does not complete")
        return lead, invoice

    def test_push_to_sage_completes_and_wins_the_lead(self):
        lead, invoice = self.invoice_job("Boiler service, Harbour Bakery")

        # Send to Sage as the accounts team does, through the sandbox.
        invoice.with_user(self.team_user).action_sage_send()

        self.assertEqual(invoice.sage_state, "sent", invoice.sage_last_error)
        sage_invoice = self.sandbox.state.find_artefact(invoice.sage_id)
        self.assertEqual(invoice.amount_total, 240.0)  # (2.5 h × 60 + 4 × 12.5) + 20 %
        self.assertEqual(float(sage_invoice["total_amount"]), invoice.amount_total)
        self.assertEqual(lead.sage_invoicing_state, "completed")
        self.assertEqual(lead.probability, 100)
        self.assertTrue(lead.stage_id.is_won)
        with self.assertRaisesRegex(UserError, "is completed: its invoice is already in Sage"):
            lead.action_sage_update_invoice()
        with self.assertRaisesRegex(UserError, "already been invoiced and sent to Sage"):
            self.run_server_action(lead)

    def test_refused_push_leaves_the_lead_active_until_sent(self):
        lead, invoice = self.invoice_job("Roof repair")
        # Sage refuses the document (validation error): nothing reached Sage.
        self.sandbox.fail_next(1, status=422, path_contains="POST /sales_invoices")
        with (
            mute_logger("odoo.addons.sage_one_connector.sage_api.client"),
            # The push may report the failure as an error or in its notification.
            contextlib.suppress(UserError),
        ):
            invoice.with_user(self.team_user).action_sage_send()
        self.assertNotEqual(invoice.sage_state, "sent")
        self.assertFalse(invoice.sage_id)
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertNotEqual(lead.probability, 100)

        # Sent again once Sage accepts it: the job is completed.
        invoice.with_user(self.team_user).action_sage_send()
        self.assertEqual(invoice.sage_state, "sent", invoice.sage_last_error)
        self.assertEqual(lead.sage_invoicing_state, "completed")
        self.assertEqual(lead.probability, 100)
