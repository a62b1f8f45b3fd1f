"""Exactly once: lost answers, 429s and 5xx never create a document twice."""

from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.sage_one_connector.models import account_move

from .test_send_common import SagePushCase


@tagged("post_install", "-at_install")
class TestSendExactlyOnce(SagePushCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(self.clear_sandbox_faults)
        self.clear_sandbox_faults()  # no fault unless a test asks

    def assertOnceInSage(self, move, collection="sales_invoices"):
        matching = self.sage_documents_of(move, collection)
        self.assertEqual(len(matching), 1, f"{move.name} is {len(matching)} times in Sage")
        self.assertEqual(matching[0]["id"], move.sage_id)

    def test_idempotency_id_is_stored_and_committed_before_the_call(self):
        invoice = self.make_invoice()
        events = []
        real_send = account_move.send_document
        real_commit = type(self.env["account.move"])._sage_commit

        def spy_commit(moves):
            events.append(("commit", invoice.sage_state, invoice.sage_idempotency_id))
            return real_commit(moves)

        def spy_send(client, job):
            events.append(("send", invoice.sage_state, job.idempotency_id))
            return real_send(client, job)

        with (
            patch.object(account_move, "send_document", spy_send),
            patch.object(type(self.env["account.move"]), "_sage_commit", spy_commit),
        ):
            self.send(invoice)
        commit, send = events[0], events[1]
        self.assertEqual(commit[:2], ("commit", "sending"))
        self.assertEqual(send[:2], ("send", "sending"))
        self.assertEqual(len(commit[2]), 32)
        self.assertEqual(commit[2], send[2])
        self.assertEqual(invoice.sage_idempotency_id, send[2])
        key = (self.sage_business_id, "/sales_invoices", send[2])
        self.assertIn(key, self.sandbox.state.idempotency)

    def test_dropped_connection_after_save_links_the_saved_document(self):
        invoice = self.make_invoice()
        self.send(invoice)  # creates the contact, so the drop hits the invoice POST
        second = self.make_invoice(invoice.partner_id)
        replays = self.sandbox.stats()["idempotent_replays"]
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        self.send(second)
        self.assertEqual(second.sage_state, "sent")
        self.assertOnceInSage(second)
        # Found by searching Sage (reference, contact, date, total), not re-posted.
        self.assertEqual(self.sandbox.stats()["idempotent_replays"], replays)
        self.assertTrue(any("lost answer" in m.body for m in second.message_ids))

    def test_dropped_connection_and_failing_search_replays_with_same_id(self):
        invoice = self.make_invoice()
        replays = self.sandbox.stats()["idempotent_replays"]
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        self.sandbox.fail_next(10, status=503, path_contains="GET /sales_invoices")
        self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.assertOnceInSage(invoice)
        self.assertEqual(self.sandbox.stats()["idempotent_replays"], replays + 1)

    def test_server_errors_before_saving_then_success(self):
        invoice = self.make_invoice()
        self.sandbox.fail_next(2, status=500, path_contains="POST /sales_invoices")
        self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.assertOnceInSage(invoice)

    def test_rate_limited_then_success(self):
        invoice = self.make_invoice()
        self.sandbox.fail_next(2, status=429, path_contains="POST /sales_invoices")
        self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.assertOnceInSage(invoice)

    def test_persistent_server_errors_leave_it_uncertain_then_a_manager_resends_once(self):
        invoice = self.make_invoice()
        self.send(invoice)  # the customer exists in Sage from now on
        second = self.make_invoice(invoice.partner_id)
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        self.sandbox.fail_next(20, status=503, path_contains="sales_invoices")
        self.send(second)
        self.assertEqual(second.sage_state, "uncertain")
        self.assertFalse(second.sage_id)
        first_id = second.sage_idempotency_id
        self.assertTrue(first_id)
        self.assertTrue(second.sage_last_error)
        self.assertTrue(any("may or may not" in m.body for m in second.message_ids))
        # The accounts team cannot resolve an uncertain document.
        with self.assertRaises(AccessError):
            self.send(second, self.team_user)
        # Sage is back: the manager's retry finds the saved document.
        self.clear_sandbox_faults()
        self.send(second, self.manager_user)
        self.assertEqual(second.sage_state, "sent")
        self.assertEqual(second.sage_idempotency_id, first_id)
        self.assertOnceInSage(second)

    def test_uncertain_with_candidate_linked_by_a_manager(self):
        invoice = self.make_invoice()
        self.send(invoice)
        second = self.make_invoice(invoice.partner_id)
        # The document is saved, the answer lost and the search cannot tell
        # (Sage's copy has a different total): uncertain with a candidate.
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        self.sandbox.fail_next(10, status=503, path_contains="POST /sales_invoices")
        original = type(self.sandbox.state).create_artefact

        def fat_finger(state, kind, business_id, data):
            record = original(state, kind, business_id, data)
            record["total_amount"] += Decimal("1.00")
            return record

        type(self.sandbox.state).create_artefact = fat_finger
        self.addCleanup(setattr, type(self.sandbox.state), "create_artefact", original)
        self.send(second)
        type(self.sandbox.state).create_artefact = original
        self.assertEqual(second.sage_state, "uncertain")
        self.assertTrue(second.sage_candidate_id)
        self.assertIn(second.sage_candidate_id, second.sage_candidates_info)
        with self.assertRaises(AccessError):
            second.with_user(self.team_user).action_sage_link_candidate()
        second.with_user(self.manager_user).action_sage_link_candidate()
        self.assertEqual(second.sage_state, "sent")
        self.assertEqual(second.sage_id, self.sage_documents_of(second)[0]["id"])
        self.assertOnceInSage(second)

    def test_interrupted_push_is_retried_after_a_while_and_looked_up_first(self):
        invoice = self.make_invoice()
        # A worker died after the POST was saved: the move stayed "sending".
        self.sandbox.fail_next(1, status="drop_after_save", path_contains="POST /sales_invoices")
        self.sandbox.fail_next(20, status=503, path_contains="sales_invoices")
        self.send(invoice)
        self.clear_sandbox_faults()
        invoice.write({"sage_state": "sending", "sage_sending_since": fields.Datetime.now()})
        with self.assertRaisesRegex(UserError, "already being sent"):
            self.send(invoice)
        invoice.sage_sending_since = fields.Datetime.now() - timedelta(hours=1)
        replays = self.sandbox.stats()["idempotent_replays"]
        self.send(invoice)
        self.assertEqual(invoice.sage_state, "sent")
        self.assertOnceInSage(invoice)
        self.assertEqual(self.sandbox.stats()["idempotent_replays"], replays)

    def test_credit_note_and_allocation_survive_dropped_connections(self):
        invoice = self.make_invoice()
        self.send(invoice)
        credit_note = self.make_credit_note(invoice)
        allocations = len(self.sage_records("contact_allocations"))
        self.sandbox.fail_next(1, "drop_after_save", path_contains="POST /sales_credit_notes")
        self.sandbox.fail_next(1, "drop_after_save", path_contains="POST /contact_allocations")
        self.send(credit_note)
        self.assertEqual(credit_note.sage_state, "sent")
        self.assertOnceInSage(credit_note, "sales_credit_notes")
        self.assertEqual(len(self.sage_records("contact_allocations")), allocations + 1)
        self.assertEqual(self.sage_invoice(invoice)["outstanding_amount"], Decimal(0))

    def test_random_faults_every_document_exactly_once(self):
        partner = self.make_customer()
        self.send(self.make_invoice(partner))
        invoices = self.env["account.move"]
        for quantity in range(1, 7):
            invoices |= self.make_invoice(
                partner,
                lines=[{"name": f"Item {quantity}", "quantity": quantity, "price_unit": 10}],
            )
        self.sandbox.set_faults(rate_429=0.15, rate_5xx=0.15, drop_after_save=0.3, retry_after=0)
        for _round in range(8):
            pending = invoices.filtered(lambda move: move.sage_state != "sent")
            if not pending:
                break
            try:
                self.send(pending, self.manager_user)
            except UserError:
                continue  # e.g. a lookup failed during preparation: nothing was sent
        self.sandbox.set_faults()
        self.assertEqual(set(invoices.mapped("sage_state")), {"sent"})
        for invoice in invoices:
            self.assertOnceInSage(invoice)
        self.assertTrue(self.sandbox.stats()["faults_injected"])
