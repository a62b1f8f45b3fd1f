"""Push rights hold in the server methods (ORM and RPC), not only in the UI."""

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestPushRights(SagePushCase):
    def assertRefused(self, moves, user, method="action_sage_send"):
        writes = self.sage_writes()
        counts = self.sandbox_counts()
        before = self.move_snapshot(moves)
        with self.assertRaises(AccessError):
            getattr(self.env["account.move"].with_user(user).browse(moves.ids), method)()
        self.assertEqual(self.sage_writes(), writes)
        self.assertEqual(self.sandbox_counts(), counts)
        self.assertEqual(self.move_snapshot(moves), before)

    def test_team_sends_invoices(self):
        invoice = self.make_invoice()
        self.env["account.move"].with_user(self.team_user).browse(invoice.ids).action_sage_send()
        self.assertEqual(invoice.sage_state, "sent")

    def test_team_cannot_send_credit_notes(self):
        invoice = self.make_invoice()
        self.send(invoice, self.team_user)
        credit_note = self.make_credit_note(invoice)
        self.assertRefused(credit_note, self.team_user)
        self.send(credit_note, self.manager_user)
        self.assertEqual(credit_note.sage_state, "sent")

    def test_team_cannot_send_adjustments(self):
        invoice = self.make_invoice()
        adjustment = self.make_invoice(invoice.partner_id, reversed_entry_id=invoice.id)
        self.assertRefused(adjustment, self.team_user)
        # Nor an invoice selected together with an adjustment.
        self.assertRefused(invoice + adjustment, self.team_user)

    def test_team_cannot_write_off(self):
        invoice = self.make_invoice()
        self.send(invoice, self.team_user)
        self.assertRefused(invoice, self.team_user, "action_sage_write_off")

    def test_invoicing_user_without_sage_group_cannot_send(self):
        billing = new_test_user(
            self.env,
            login="billing_only",
            groups="account.group_account_invoice",
            company_id=self.company.id,
            company_ids=[(6, 0, self.company.ids)],
        )
        self.assertRefused(self.make_invoice(), billing)

    def test_other_company_invoice_is_out_of_reach(self):
        other = self.setup_other_company(name="Other Sage Co")["company"]
        partner = self.make_customer()
        invoice = (
            self.env["account.move"]
            .with_company(other)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": partner.id,
                    "invoice_date": "2026-01-15",
                    "invoice_line_ids": [
                        (0, 0, {"name": "Other company work", "quantity": 1, "price_unit": 10})
                    ],
                }
            )
        )
        invoice.action_post()
        self.assertRefused(invoice, self.team_user)
        self.assertRefused(invoice, self.manager_user, "action_sage_write_off")


@tagged("post_install", "-at_install")
class TestPushRightsRpc(SagePushCase, HttpCase):
    """The same rights through JSON-RPC, as the web client or any script calls them."""

    def call(self, login, moves, method):
        self.authenticate(login, login)
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw/account.move/" + method,
            {"model": "account.move", "method": method, "args": [moves.ids], "kwargs": {}},
        )

    def test_rpc_team_invoice_allowed_credit_note_and_write_off_refused(self):
        invoice = self.make_invoice()
        result = self.call("sage_team", invoice, "action_sage_send")
        self.assertEqual(result["params"]["type"], "success")
        invoice.invalidate_recordset()
        self.assertEqual(invoice.sage_state, "sent")

        credit_note = self.make_credit_note(invoice)
        writes = self.sage_writes()
        with self.assertRaisesRegex(JsonRpcException, "AccessError"):
            self.call("sage_team", credit_note, "action_sage_send")
        with self.assertRaisesRegex(JsonRpcException, "AccessError"):
            self.call("sage_team", invoice, "action_sage_write_off")
        self.assertEqual(self.sage_writes(), writes)
        credit_note.invalidate_recordset()
        self.assertEqual(credit_note.sage_state, "not_sent")

        result = self.call("sage_manager", credit_note, "action_sage_send")
        self.assertEqual(result["params"]["type"], "success")
        credit_note.invalidate_recordset()
        self.assertEqual(credit_note.sage_state, "sent")

    def test_rpc_private_steps_are_not_callable(self):
        invoice = self.make_invoice()
        with self.assertRaises(JsonRpcException):
            self.call("sage_manager", invoice, "_sage_prepare_push")
