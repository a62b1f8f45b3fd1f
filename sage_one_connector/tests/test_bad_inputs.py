"""Bad input: malformed or hostile values, entered as users enter them.

Every case goes through JSON-RPC as the web client sends it (a form save is
``web_save``, a button is ``call_button``), signed in as the user who would
type it. Two kinds of case:

* refused: a clear, translatable message that names the problem (a
  ``UserError`` or ``ValidationError``, never a traceback or an SQL error),
  Sage receives no write, and nothing changes in Odoo (the request is rolled
  back as Odoo rolls back any refused request);
* cleaned: the value is legitimate but hostile or oversized (non-ASCII names,
  ``<script>`` in a line, a 60-character PO number): it reaches Sage intact,
  as plain text or truncated to Sage's limit, and Odoo keeps the original.

Each case is its own named subTest; the class ends with the line
"bad inputs: N tried, N handled".
"""

import logging

from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged

from .attack_common import AttackTallyMixin, JsonRpcMixin, captured_logs
from .test_job_card import JobCardCommon
from .test_send_common import SagePushCase

USER_ERRORS = ("odoo.exceptions.UserError", "odoo.exceptions.ValidationError")
TECHNICAL_WORDS = ("Traceback", "psycopg2", "violates", "null value in column", "KeyError")
CONNECTION_FIELDS = (
    "api_url",
    "authorize_url",
    "token_url",
    "revoke_url",
    "app_url",
    "client_id",
    "client_secret",
    "state",
    "default_ledger_id",
    "bad_debt_ledger_id",
    "default_due_days",
    "numbering_mode",
    "number_prefix",
    "number_suffix",
    "max_concurrency",
)
LEAD_FIELDS = ("sage_invoicing_state", "active", "stage_id", "probability", "partner_id")


@tagged("post_install", "-at_install")
class TestBadInputs(AttackTallyMixin, JsonRpcMixin, JobCardCommon, SagePushCase, HttpCase):
    tally_name = "bad inputs"
    tally_minimum = 30
    tally_line = "%(name)s: %(tried)s tried, %(handled)s handled"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.setup_job_card_data()
        # Job card products carry the company's default sale tax: make it known to Sage.
        cls.tax_sale_a.write(
            {"amount": 20.0, "sage_tax_rate_id": cls.sage_tax_rate("GB_STANDARD").id}
        )
        # Another company with its own (not connected) Sage business and reference data.
        cls.company_b = cls.setup_other_company(name="Other Business Ltd")["company"]
        cls.connection_b = env["sage.connection"].create({"company_id": cls.company_b.id})
        cls.ledger_b = env["sage.ledger.account"].create(
            {
                "connection_id": cls.connection_b.id,
                "sage_id": "other-business-4000",
                "name": "Sales (other business)",
                "nominal_code": "4000",
            }
        )
        cls.rate_b = env["sage.tax.rate"].create(
            {
                "connection_id": cls.connection_b.id,
                "sage_id": "GB_STANDARD",
                "name": "Standard (other business)",
                "percentage": 20,
            }
        )
        # A company whose connection has no client ID yet.
        cls.company_c = cls.setup_other_company(name="Not Yet Connected Ltd")["company"]
        cls.connection_c = env["sage.connection"].create({"company_id": cls.company_c.id})
        cls.admin = new_test_user(
            env,
            login="sage_bad_admin",
            groups="base.group_system,account.group_account_manager,"
            "sage_one_connector.group_sage_financial_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, (cls.company + cls.company_b + cls.company_c).ids)],
        )
        cls.product_b = env["product.product"].create(
            {"name": "Other company's product", "company_id": cls.company_b.id}
        )

    def setUp(self):
        super().setUp()
        self.clear_sandbox_faults()
        self.addCleanup(self.clear_sandbox_faults)
        self.tracked_moves = self.env["account.move"]
        self.tracked_leads = self.env["crm.lead"]

    # ------------------------------------------------------------------
    # Runner
    # ------------------------------------------------------------------
    def login(self, user):
        self.authenticate(user.login, user.login)

    def snapshot(self):
        """What a refused input could have changed, read as superuser."""
        self.env.invalidate_all()
        conn = self.connection.sudo()
        Move = self.env["account.move"].sudo()
        return {
            "connection": {name: conn[name] for name in CONNECTION_FIELDS},
            "connection_c": {name: self.connection_c.sudo()[name] for name in CONNECTION_FIELDS},
            "oauth_states": self.env["sage.oauth.state"].sudo().search_count([]),
            "mappings": self.env["sage.ledger.mapping"]
            .sudo()
            .search([])
            .read(["connection_id", "product_id", "account_id", "ledger_id"]),
            "tax_rates": self.env["account.tax"]
            .sudo()
            .with_context(active_test=False)
            .search([])
            .read(["sage_tax_rate_id", "type_tax_use"]),
            "moves": Move.search_count([]),
            "tracked_moves": self.move_snapshot(self.tracked_moves),
            "leads": [
                {name: lead[name] for name in LEAD_FIELDS}
                for lead in self.tracked_leads.sudo().with_context(active_test=False)
            ],
            "job_lines": self.env["sage.job.card.line"]
            .sudo()
            .search([])
            .read(["product_id", "quantity", "hours", "price_unit", "name"]),
            "contact_links": self.env["sage.contact.link"].sudo().search_count([]),
            "sandbox": self.sandbox_counts(),
        }

    def refused(self, label, user, model, method, args, pattern, kwargs=None, button=False):
        """Run one bad input; it must be refused with `pattern` and change nothing."""
        self.tally_try(label)
        with self.subTest(label):
            self.login(user)
            before = self.snapshot()
            writes = self.sage_writes()
            # Odoo logs the refusal (and the SQL of a violated constraint): expected here.
            with captured_logs("odoo.http", "odoo.sql_db", level=logging.WARNING):
                if button:
                    answer = self.rpc_button(model, method, args[0])
                else:
                    answer = self.rpc(model, method, args, kwargs)
            error = self.rpc_error(answer, label)
            message = error["message"]
            self.assertIn(error["name"], USER_ERRORS, f"{label}: {message}")
            self.assertRegex(message, pattern, label)
            for word in TECHNICAL_WORDS:
                self.assertNotIn(word, message, f"{label}: technical message")
            self.assertEqual(self.sage_writes(), writes, f"{label}: Sage received a write")
            self.assertEqual(self.snapshot(), before, f"{label}: Odoo data changed")
            self.tally_handled(label)

    def cleaned(self, label, check):
        """Run `check()` (which sends and asserts what Sage received) as one case."""
        self.tally_try(label)
        with self.subTest(label):
            check()
            self.tally_handled(label)

    # ------------------------------------------------------------------
    # Helpers: documents
    # ------------------------------------------------------------------
    def track(self, moves):
        self.tracked_moves |= moves
        return moves

    def push_as_manager(self, move):
        """Send to Sage as a financial manager through RPC; the notification."""
        self.login(self.manager_user)
        answer = self.rpc("account.move", "action_sage_send", [move.ids])
        self.assertIn("result", answer, answer.get("error", {}).get("data", {}).get("message"))
        move.invalidate_recordset()
        self.assertEqual(move.sage_state, "sent", move.sage_last_error)
        return answer["result"]

    def sage_contact_of(self, move):
        link = move.commercial_partner_id.sudo().sage_contact_link_ids.filtered(
            lambda lk: lk.connection_id == self.connection
        )
        return self.sandbox.state.contacts[link.sage_contact_id]

    # ------------------------------------------------------------------
    # Settings and connection
    # ------------------------------------------------------------------
    def test_connection_settings(self):
        cases = [
            ("API URL that is not http(s)", {"api_url": "ftp://api.accounting.sage.com/v3.1"},
             "API URL must be a full https://"),
            ("token URL with a javascript: scheme", {"token_url": "javascript:alert(1)"},
             "Token URL must be a full https://"),
            ("authorize URL in plain http on a foreign host",
             {"authorize_url": "http://sage.example.com/oauth"}, "Authorize URL must be a full"),
            ("revoke URL without a host", {"revoke_url": "https:///revoke"},
             "Revoke URL must be a full https://"),
            ("web app URL that is a relative path", {"app_url": "/app/sales"},
             "Sage web app URL must be a full https://"),
            ("API URL emptied", {"api_url": False}, "API URL"),
            ("negative default due days", {"default_due_days": -5}, "cannot be negative"),
            ("default due days beyond a year", {"default_due_days": 1000},
             "between 0 and 365"),
            ("concurrency 0", {"max_concurrency": 0}, "between 1 and 64"),
            ("concurrency of 500 requests", {"max_concurrency": 500}, "between 1 and 64"),
            ("number prefix longer than Sage's 6 characters",
             {"numbering_mode": "odoo", "number_prefix": "INVOICE"}, "at most 6 characters"),
            ("prefix and suffix longer than 10 together",
             {"number_prefix": "ABCDEF", "number_suffix": "-GB-2026"},
             "together can be at most 10"),
            ("space in the number prefix", {"number_prefix": "IN V"}, "cannot contain spaces"),
            ("default ledger of another Sage business", {"default_ledger_id": self.ledger_b.id},
             "belongs to another Sage business"),
            ("bad debts ledger of another Sage business",
             {"bad_debt_ledger_id": self.ledger_b.id}, "belongs to another Sage business"),
        ]  # fmt: skip
        for label, values, pattern in cases:
            self.refused(
                f"settings: {label}",
                self.admin,
                "sage.connection",
                "web_save",
                [self.connection.ids, values],
                pattern,
                kwargs={"specification": {}},
            )

    def test_connect_without_a_usable_client_id(self):
        self.refused(
            "settings: Connect with an empty client ID",
            self.admin,
            "sage.connection",
            "action_sage_connect",
            [self.connection_c.ids],
            "Enter the client ID and client secret",
            button=True,
        )
        self.connection_c.sudo().write({"client_id": "   ", "client_secret": "   "})
        self.refused(
            "settings: Connect with a client ID of blanks",
            self.admin,
            "sage.connection",
            "action_sage_connect",
            [self.connection_c.ids],
            "client ID",
            button=True,
        )

    # ------------------------------------------------------------------
    # Mappings
    # ------------------------------------------------------------------
    def test_mappings(self):
        product = self._create_product(name="Boiler service", lst_price=80)
        income = self.revenue_account
        Mapping = self.env["sage.ledger.mapping"]
        Mapping.create(
            {"connection_id": self.connection.id, "product_id": product.id,
             "ledger_id": self.ledger_4010.id}
        )  # fmt: skip
        hidden = self.env["sage.ledger.account"].create(
            {
                "connection_id": self.connection.id,
                "sage_id": "hidden-ledger",
                "name": "Hidden in sales",
                "nominal_code": "4999",
                "active": False,
            }
        )
        other_product = self._create_product(name="Call-out fee", lst_price=30)
        conn = self.connection.id
        cases = [
            ("ledger of another Sage business",
             {"connection_id": conn, "product_id": other_product.id,
              "ledger_id": self.ledger_b.id}, "same Sage business"),
            ("ledger no longer visible in sales",
             {"connection_id": conn, "product_id": other_product.id, "ledger_id": hidden.id},
             "no longer visible in sales"),
            ("both an income account and a product",
             {"connection_id": conn, "product_id": other_product.id, "account_id": income.id,
              "ledger_id": self.ledger_4000.id}, "either an income account or a product"),
            ("neither an income account nor a product",
             {"connection_id": conn, "ledger_id": self.ledger_4000.id},
             "either an income account or a product"),
            ("the same product mapped twice",
             {"connection_id": conn, "product_id": product.id, "ledger_id": self.ledger_4000.id},
             "already mapped"),
            ("a product of another company",
             {"connection_id": conn, "product_id": self.product_b.id,
              "ledger_id": self.ledger_4000.id}, "belongs to another company"),
        ]  # fmt: skip
        for label, values, pattern in cases:
            self.refused(
                f"mapping: {label}",
                self.admin,
                "sage.ledger.mapping",
                "web_save",
                [[], values],
                pattern,
                kwargs={"specification": {}},
            )
        income_b = self.env["account.account"].search(
            [("company_ids", "in", self.company_b.ids), ("account_type", "=", "income")], limit=1
        )
        self.refused(
            "mapping: an income account of another company",
            self.admin,
            "sage.ledger.mapping",
            "web_save",
            [[], {"connection_id": conn, "account_id": income_b.id,
                  "ledger_id": self.ledger_4000.id}],
            "is not used by",
            kwargs={"specification": {}},
        )  # fmt: skip
        purchase_tax = self.company_data["default_tax_purchase"]
        for label, tax, rate, pattern in (
            ("a sales tax mapped to another business's Sage rate", self.vat20, self.rate_b,
             "belongs to the Sage business of another company"),
            ("a purchase tax given a Sage rate", purchase_tax,
             self.sage_tax_rate("GB_STANDARD"), "Only sales taxes are sent to Sage"),
        ):  # fmt: skip
            self.refused(
                f"mapping: {label}",
                self.admin,
                "account.tax",
                "web_save",
                [tax.ids, {"sage_tax_rate_id": rate.id}],
                pattern,
                kwargs={"specification": {}},
            )

    # ------------------------------------------------------------------
    # Job cards
    # ------------------------------------------------------------------
    def job_lead(self, name, lines=None, state="new", **values):
        lead = self.make_lead(name, state=state, lines=lines, **values).sudo()
        self.tracked_leads |= lead
        return lead

    def test_job_cards(self):
        archived = self._create_product(name="Discontinued valve", lst_price=9.0)
        archived.active = False
        not_for_sale = self._create_product(name="Internal spare", lst_price=9.0)
        not_for_sale.sale_ok = False
        labour, pipe = self.labour, self.pipe
        no_customer = self.env["res.partner"]
        generate = "action_sage_generate_invoice"
        cases = [
            ("empty job card", self.job_lead("Empty job", lines=[]), generate,
             "its job card is empty"),
            ("negative quantity", self.job_lead("Negative", lines=[(pipe, -2.0, 0.0, 12.5)]),
             generate, "zero or negative quantity"),
            ("zero quantity", self.job_lead("Zero qty", lines=[(pipe, 0.0, 0.0, 12.5)]),
             generate, "zero or negative quantity"),
            ("zero unit price", self.job_lead("Free pipe", lines=[(pipe, 1.0, 0.0, 0.0)]),
             generate, "zero or negative unit price"),
            ("negative unit price", self.job_lead("Refund", lines=[(pipe, 1.0, 0.0, -5.0)]),
             generate, "zero or negative unit price"),
            ("negative hours", self.job_lead("Hours", lines=[(labour, 1.0, -3.0, 60.0)]),
             generate, "negative hours"),
            ("archived product", self.job_lead("Old", lines=[(archived, 1.0, 0.0, 9.0)]),
             generate, "Discontinued valve.*is archived"),
            ("product that cannot be sold",
             self.job_lead("Spare", lines=[(not_for_sale, 1.0, 0.0, 9.0)]), generate,
             "Internal spare.*cannot be sold"),
            ("no customer", self.job_lead("Nobody", partner=no_customer), generate,
             "it has no customer"),
            ("job not marked ready", self.job_lead("Unfinished", state="not_ready"), generate,
             "not marked ready to invoice"),
            ("lost lead", self.job_lead("Lost job", active=False), generate,
             "lost or archived"),
            ("mark ready with an empty job card",
             self.job_lead("Nothing done", lines=[], state="not_ready"),
             "action_sage_mark_ready", "empty job card"),
            ("update an invoice never generated", self.job_lead("No invoice yet"),
             "action_sage_update_invoice", "generate the invoice first"),
        ]  # fmt: skip
        for label, lead, method, pattern in cases:
            self.refused(
                f"job card: {label}",
                self.accounts_clerk,
                "crm.lead",
                method,
                [lead.ids],
                pattern,
                button=True,
            )

    def test_job_card_hostile_text_reaches_sage_as_plain_text(self):
        long_reference = "PO-2026-0042/" + "BUILDING-C-NORTH-WING-" * 3
        script = "<script>alert('job')</script>Boiler service <b>urgent</b>"

        def check():
            lead = self.job_lead(
                "Hostile job",
                lines=[(self.labour, 1.0, 2.0, 60.0)],
                sage_customer_reference=long_reference,
            )
            lead.sage_job_card_line_ids.name = script
            self.login(self.accounts_clerk)
            answer = self.rpc_button("crm.lead", "action_sage_generate_invoice", lead.ids)
            self.assertIn("result", answer, answer.get("error"))
            invoice = lead.sage_invoice_id
            invoice.currency_id = self.gbp  # the Sage business's currency
            self.assertEqual(invoice.ref, long_reference, "Odoo keeps the whole reference")
            self.assertEqual(invoice.invoice_line_ids.name, script, "Odoo keeps the text")
            invoice.action_post()
            self.push_as_manager(invoice)
            sage_invoice = self.sage_invoice(invoice)
            self.assertEqual(len(sage_invoice["reference"]), 25)
            self.assertTrue(sage_invoice["reference"].startswith(long_reference[:24]))
            self.assertTrue(sage_invoice["reference"].endswith("…"))
            description = sage_invoice["invoice_lines"][0]["description"]
            self.assertNotIn("<", description)
            self.assertIn("Boiler service urgent", description)

        self.cleaned("job card: <script> in a line and a 60-character PO number", check)

    # ------------------------------------------------------------------
    # Documents
    # ------------------------------------------------------------------
    def test_documents_refused(self):
        sent = self.track(self.make_invoice())
        self.push_as_manager(sent)
        cancelled = self.track(self.make_invoice())
        cancelled.button_cancel()
        yen = self.setup_other_currency("JPY", rates=[("2016-01-01", 150.0)])
        untaxed_rate = self.env["account.tax"].create(
            {"name": "VAT 5% (unmapped)", "amount": 5, "type_tax_use": "sale"}
        )
        no_email = self.make_customer(email=False)
        bill_line = [{"name": "Paper", "quantity": 1, "price_unit": 10, "tax_ids": []}]
        cases = [
            ("draft invoice", self.make_invoice(post=False), "post it first"),
            ("cancelled invoice", cancelled, "Only posted documents"),
            ("vendor bill", self.make_invoice(move_type="in_invoice", lines=bill_line),
             "Only customer invoices and credit notes"),
            ("zero amount", self.make_invoice(lines=[
                {"name": "Goodwill visit", "quantity": 1, "price_unit": 0}]),
             "only accepts documents with a positive total"),
            ("currency not in Sage", self.make_invoice(currency=yen),
             "currency JPY is not available in Sage"),
            ("customer without email and not linked", self.make_invoice(no_email),
             "has no email address and is not linked to a Sage contact"),
            ("negative line", self.make_invoice(lines=[
                {"name": "Work", "quantity": 2, "price_unit": 150},
                {"name": "Discount", "quantity": 1, "price_unit": -20}]),
             "negative amount"),
            ("tax without a Sage tax rate", self.make_invoice(lines=[
                {"name": "Work", "quantity": 1, "price_unit": 100,
                 "tax_ids": [Command.set(untaxed_rate.ids)]}]),
             "VAT 5% \\(unmapped\\) has no Sage tax rate"),
            ("two taxes on one line", self.make_invoice(lines=[
                {"name": "Work", "quantity": 1, "price_unit": 100,
                 "tax_ids": [Command.set((self.vat20 + self.vat0).ids)]}]),
             "several taxes"),
            ("invoice already in Sage", sent, "It is already in Sage"),
        ]  # fmt: skip
        for label, move, pattern in cases:
            self.track(move)
            self.refused(
                f"document: {label}",
                self.manager_user,
                "account.move",
                "action_sage_send",
                [move.ids],
                pattern,
            )
        self.refused(
            "document: nothing selected",
            self.manager_user,
            "account.move",
            "action_sage_send",
            [[]],
            "Select the documents to send to Sage",
        )
        unsent = self.track(self.make_invoice())
        self.refused(
            "document: write-off of an invoice not in Sage",
            self.manager_user,
            "account.move",
            "action_sage_write_off",
            [unsent.ids],
            "not in Sage yet",
        )

    def test_documents_currency_not_enabled_in_the_business(self):
        """Sage lists EUR, but this business has multi-currency switched off.

        Connect and the reference-data sync read it from Sage's financial
        settings, so the pre-flight refuses the document before any call: no
        contact, no invoice in Sage.
        """
        euro = self.setup_other_currency("EUR", rates=[("2016-01-01", 1.15)])
        invoice = self.track(self.make_invoice(currency=euro))
        self.assertFalse(self.connection.multi_currency_enabled)
        self.refused(
            "document: currency listed by Sage but not enabled in the business",
            self.manager_user,
            "account.move",
            "action_sage_send",
            [invoice.ids],
            "multi-currency is not enabled",
        )

    def test_documents_cleaned(self):
        def non_ascii():
            name = "Zoë Ångström-Łukasiewicz & Søn — 東京支店"
            line = "Crème brûlée façade, naïve Œuvre ☕ × 2 — Ünïcödé"
            partner = self.make_customer(name=name)
            invoice = self.track(
                self.make_invoice(partner, lines=[{"name": line, "quantity": 1, "price_unit": 90}])
            )
            self.push_as_manager(invoice)
            self.assertEqual(self.sage_contact_of(invoice)["name"], name)
            self.assertEqual(self.sage_invoice(invoice)["invoice_lines"][0]["description"], line)

        def script_in_line():
            line = "<script>document.location='https://evil.example'</script>Boiler <i>repair</i>"
            invoice = self.track(
                self.make_invoice(lines=[{"name": line, "quantity": 1, "price_unit": 90}])
            )
            self.push_as_manager(invoice)
            description = self.sage_invoice(invoice)["invoice_lines"][0]["description"]
            self.assertNotIn("<", description)
            self.assertIn("Boiler repair", description)
            self.assertEqual(invoice.invoice_line_ids.name, line, "Odoo keeps what was typed")
            # What Odoo shows about the push is text, never markup taken from the input.
            bodies = invoice.message_ids.mapped("body")
            self.assertFalse([body for body in bodies if "<script" in body])

        def script_in_customer_name():
            partner = self.make_customer(name='<img src=x onerror="alert(1)">Evil Ltd')
            invoice = self.track(self.make_invoice(partner))
            self.push_as_manager(invoice)
            self.assertEqual(self.sage_contact_of(invoice)["name"], "Evil Ltd")

        def long_reference():
            reference = "PO-2026-THIS-IS-A-VERY-LONG-PURCHASE-ORDER-REFERENCE-0001"
            invoice = self.track(self.make_invoice(ref=reference))
            self.push_as_manager(invoice)
            sent_reference = self.sage_invoice(invoice)["reference"]
            self.assertEqual(sent_reference, reference[:24] + "…")
            self.assertEqual(invoice.ref, reference)

        def long_customer_name():
            name = "The Very Long Name Holdings " * 6
            invoice = self.track(self.make_invoice(self.make_customer(name=name.strip())))
            self.push_as_manager(invoice)
            sage_name = self.sage_contact_of(invoice)["name"]
            self.assertEqual(len(sage_name), 100)
            self.assertTrue(name.startswith(sage_name[:-1]))

        def html_notes():
            invoice = self.track(
                self.make_invoice(
                    narration="<p>Thank you!</p><script>steal(document.cookie)</script>"
                )
            )
            self.push_as_manager(invoice)
            notes = self.sage_invoice(invoice).get("notes") or ""
            self.assertIn("Thank you!", notes)
            self.assertNotIn("<", notes)
            self.assertNotIn("steal", notes)

        def archived_customer():
            # The invoice is a real receivable: Sage gets it, with the customer as named.
            partner = self.make_customer(name="Closed Down Ltd")
            invoice = self.track(self.make_invoice(partner))
            partner.active = False
            self.push_as_manager(invoice)
            self.assertEqual(self.sage_contact_of(invoice)["name"], "Closed Down Ltd")

        for label, check in (
            ("non-ASCII customer and line sent intact", non_ascii),
            ("<script> in a line name sent as plain text", script_in_line),
            ("markup in the customer name sent as plain text", script_in_customer_name),
            ("reference longer than 25 characters truncated", long_reference),
            ("customer name longer than Sage's 100 characters truncated", long_customer_name),
            ("script in the invoice notes dropped", html_notes),
            ("archived customer sent as named", archived_customer),
        ):
            self.cleaned(f"document: {label}", check)
