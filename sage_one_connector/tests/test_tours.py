"""Real browser tours (headless Chromium) of the three main user journeys.

- an accounts-team user sends an invoice to Sage from its form and sees the Sage number;
- a financial manager pushes one payment type with Push all, and reads the completion
  notice once the background runner has pushed the batch;
- a lead's job card goes from Generate Invoice to Completed.

Each tour ends with a screenshot of its end state in ``test-output/screenshots/``
(``SAGE_SCREENSHOT_DIR`` overrides the folder). Tagged ``sage_tours`` and not
``standard``: ``scripts/test_system.sh`` runs them (``--test-tags sage_tours``),
``scripts/test.sh`` does not. With ``CI=true`` a browser that cannot start (no
Chromium, no websocket-client) fails the tests instead of skipping them.
"""

import base64
import os
import unittest
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

from odoo import fields
from odoo.modules.module import get_module_path
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import ChromeBrowser

from odoo.addons.bus.websocket import WebsocketConnectionHandler

from .test_job_card import JobCardCommon
from .test_push_all import PushAllCase


@contextmanager
def _lock_granted(_batch):
    """Stand-in for the runner's lock under HttpCase (see its use)."""
    yield True


def screenshot_dir():
    configured = os.environ.get("SAGE_SCREENSHOT_DIR")
    if configured:
        return Path(configured)
    repository = Path(get_module_path("sage_one_connector")).resolve().parent
    return repository / "test-output" / "screenshots"


@tagged("post_install", "-at_install", "-standard", "sage_tours")
class TestSageTours(JobCardCommon, PushAllCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_job_card_data()
        # The job card products carry the company's default sale tax: a UK
        # standard-rated tax known to Sage.
        cls.tax_sale_a.write(
            {"amount": 20.0, "sage_tax_rate_id": cls.sage_tax_rate("GB_STANDARD").id}
        )
        cls.job_user = new_test_user(
            cls.env,
            login="sage_job_user",
            name="Jo Jobs",
            groups="sales_team.group_sale_salesman_all_leads,"
            "sage_one_connector.group_sage_accounts_team",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )

    # ------------------------------------------------------------------
    # Running a tour
    # ------------------------------------------------------------------
    def run_tour(self, url, tour, login):
        """Run ``tour`` from ``url`` as ``login``; screenshot the end state."""
        self.screenshot_path = screenshot_dir() / f"{tour}.png"
        self.screenshot_path.unlink(missing_ok=True)
        original_stop = ChromeBrowser.stop
        test = self

        def stop_after_screenshot(browser):
            # Before Odoo closes the browser: the tour has succeeded, the page
            # still shows its end state.
            result = browser._result
            if (
                hasattr(browser, "ws")
                and result.done()
                and not result.cancelled()
                and result.exception() is None
            ):
                shot = browser._websocket_request("Page.captureScreenshot", timeout=20)
                test.screenshot_path.parent.mkdir(parents=True, exist_ok=True)
                test.screenshot_path.write_bytes(base64.b64decode(shot["data"]))
            return original_stop(browser)

        try:
            with patch.object(ChromeBrowser, "stop", stop_after_screenshot):
                self.start_tour(url, tour, login=login, timeout=120)
        except unittest.SkipTest as reason:
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true: the browser tour {tour} could not run: {reason}")
            raise
        self.assertTrue(self.screenshot_path.is_file(), f"no screenshot of the end of {tour}")

    # ------------------------------------------------------------------
    # Tours
    # ------------------------------------------------------------------
    def test_team_user_sends_an_invoice_and_sees_the_sage_number(self):
        invoice = self.make_invoice()
        self.assertEqual(invoice.sage_state, "not_sent")

        self.run_tour(
            f"/odoo/action-account.action_move_out_invoice_type/{invoice.id}",
            "sage_send_invoice_tour",
            login=self.team_user.login,
        )

        invoice.invalidate_recordset()
        self.assertEqual(invoice.sage_state, "sent", invoice.sage_last_error)
        in_sage = self.sage_documents_of(invoice)
        self.assertEqual(len(in_sage), 1, "exactly one invoice in Sage")
        self.assertEqual(invoice.sage_number, in_sage[0]["invoice_number"])
        self.assertEqual(invoice.sage_id, in_sage[0]["id"])

    def test_manager_pushes_one_payment_type_and_reads_the_completion_notice(self):
        thirty_days = self.make_typed_invoice("terms") | self.make_typed_invoice("terms")
        others = self.make_typed_invoice("none") | self.make_typed_invoice("method")
        self.assertEqual(set(thirty_days.mapped("sage_payment_type")), {"30 Days"})
        invoices_in_sage = self.sandbox_counts()["sales_invoices"]  # the sandbox outlives a test

        self.run_tour(
            "/odoo/action-sage_one_connector.action_sage_documents_to_push",
            "sage_push_all_tour",
            login=self.manager_user.login,
        )

        batch = self.env["sage.push.batch"].search([("requester_id", "=", self.manager_user.id)])
        self.assertEqual(len(batch), 1)
        self.assertEqual(batch.line_ids.move_id, thirty_days, "only the 30 Days documents")
        self.assertEqual(set(thirty_days.mapped("sage_state")), {"queued"})
        self.assertEqual(
            self.sandbox_counts()["sales_invoices"],
            invoices_in_sage,
            "nothing sent before the runner",
        )

        # The background runner, as the cron framework's "Run manually" runs it.
        # Under HttpCase every cursor is the test transaction: the runner's lock,
        # taken on a "separate" cursor, would roll the runner's own work back
        # when it is released. The lock is proven against a real server in
        # system_tests/ (crash test); here the runner gets it at once.
        # The runner's transaction starts now (the test's started with the class):
        # its records, the completion notice among them, are dated now.
        self.env.cr._now = fields.Datetime.now()
        with patch.object(type(batch), "_sage_runner_lock", _lock_granted):
            self.cron.method_direct_trigger()
        self.env.invalidate_all()
        self.assertEqual(batch.state, "done")
        self.assertEqual(set(thirty_days.mapped("sage_state")), {"sent"})
        self.assertEqual(set(others.mapped("sage_state")), {"not_sent"})
        for invoice in thirty_days:
            self.assertEqual(len(self.sage_documents_of(invoice)), 1)
        self.assertEqual(self.sandbox_counts()["sales_invoices"], invoices_in_sage + 2)

        # The manager opens the batch: the notice and the outcome, in the browser.
        # The notice travels on Odoo's bus, whose websocket Odoo switches off in
        # test mode; it is switched on here, as Odoo's own bus tests do.
        self.env.flush_all()
        self.env.cr.precommit.run()  # bus messages are written when the runner commits
        with patch.object(WebsocketConnectionHandler, "websocket_allowed", return_value=True):
            self.run_tour(
                f"/odoo/action-sage_one_connector.sage_push_batch_action/{batch.id}",
                "sage_push_all_done_tour",
                login=self.manager_user.login,
            )

    def test_lead_goes_from_generate_invoice_to_completed(self):
        # The Sage business's base currency is the company's for this journey.
        self.connection.business_currency = self.company.currency_id.name
        lead = self.make_lead("Boiler service, Harbour Bakery")
        self.assertEqual(lead.sage_invoicing_state, "new")

        self.run_tour(
            f"/odoo/action-crm.crm_lead_action_pipeline/{lead.id}",
            "sage_job_to_completed_tour",
            login=self.job_user.login,
        )

        lead.invalidate_recordset()
        invoice = lead.sudo().sage_invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.sage_state, "sent", invoice.sage_last_error)
        self.assertEqual(lead.sage_invoicing_state, "completed")
        self.assertTrue(lead.stage_id.is_won)
        # In Sage once, under the job's customer reference.
        in_sage = [
            record
            for record in self.sage_records("sales_invoices")
            if record.get("reference") == lead.sage_customer_reference
        ]
        self.assertEqual([record["id"] for record in in_sage], [invoice.sage_id])
