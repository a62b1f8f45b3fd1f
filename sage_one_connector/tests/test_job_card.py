"""Job cards on CRM leads: from a finished job to a draft invoice, and on to Completed."""

import ast

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

SERVER_ACTION = "sage_one_connector.crm_lead_action_server_sage_generate_invoice"
JOB_CARD_FORM = "sage_one_connector.crm_lead_view_form_sage_job_card"


class JobCardCommon:
    """Users, products and a customer for job card tests (mixed into a test base)."""

    @classmethod
    def setup_job_card_data(cls):
        company = cls.company_data["company"]
        common = {"company_id": company.id, "company_ids": [Command.set(company.ids)]}
        cls.invoicing_user = new_test_user(
            cls.env,
            login="job_invoicer",
            groups="sales_team.group_sale_salesman_all_leads,account.group_account_invoice",
            **common,
        )
        cls.salesman = new_test_user(
            cls.env, login="job_salesman", groups="sales_team.group_sale_salesman", **common
        )
        cls.accounts_clerk = new_test_user(
            cls.env,
            login="job_accounts_clerk",
            groups="sage_one_connector.group_sage_accounts_team",
            **common,
        )
        cls.labour = cls._create_product(name="Call-out labour", type="service", lst_price=60.0)
        cls.pipe = cls._create_product(name="Copper pipe 15mm", type="consu", lst_price=12.5)
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Harbour Bakery Ltd",
                "email": "accounts@harbour-bakery.example",
                "property_payment_term_id": cls.pay_terms_b.id,
            }
        )

    def make_lead(self, name="Boiler repair", state="new", partner=None, lines=None, **values):
        """A lead with a job card; `lines` are (product, quantity, hours, price) tuples."""
        if lines is None:
            lines = [(self.labour, 1.0, 2.5, 60.0), (self.pipe, 4.0, 0.0, 12.5)]
        lead = (
            self.env["crm.lead"]
            .sudo()
            .create(
                {
                    "name": name,
                    "type": "opportunity",
                    "company_id": self.company_data["company"].id,
                    "partner_id": (partner if partner is not None else self.customer).id,
                    "sage_customer_reference": "PO-4711",
                    "sage_job_description": "<p>Replaced the pump.</p>",
                    "sage_job_card_line_ids": [
                        Command.create(
                            {
                                "product_id": product.id,
                                "quantity": quantity,
                                "hours": hours,
                                "price_unit": price,
                            }
                        )
                        for product, quantity, hours, price in lines
                    ],
                    **values,
                }
            )
        )
        lead.sage_invoicing_state = state
        return lead.with_user(self.invoicing_user)

    def run_server_action(self, leads, user=None):
        action = self.env.ref(SERVER_ACTION).with_user(user or self.invoicing_user)
        return action.with_context(
            active_model="crm.lead", active_ids=leads.ids, active_id=leads[:1].id
        ).run()

    def job_invoices(self):
        return self.env["account.move"].sudo().search([("sage_lead_id", "!=", False)])


@tagged("post_install", "-at_install")
class TestJobCard(JobCardCommon, AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_job_card_data()

    # ------------------------------------------------------------------
    # Job card lines
    # ------------------------------------------------------------------

    def test_line_defaults_from_product_and_subtotals(self):
        lead = self.make_lead(lines=[])
        lead.write(
            {
                "sage_job_card_line_ids": [
                    Command.create({"product_id": self.labour.id, "hours": 3.0}),
                    Command.create({"product_id": self.pipe.id, "quantity": 2.0}),
                ]
            }
        )
        labour_line, pipe_line = lead.sage_job_card_line_ids
        self.assertEqual(labour_line.price_unit, 60.0)
        self.assertEqual(labour_line.name, "Call-out labour")
        self.assertEqual(labour_line.invoice_quantity, 3.0, "a service charges its hours")
        self.assertEqual(labour_line.price_subtotal, 180.0)
        self.assertEqual(pipe_line.price_unit, 12.5)
        self.assertEqual(pipe_line.price_subtotal, 25.0)
        self.assertEqual(lead.sage_job_card_total, 205.0)

    def test_hours_dropped_when_line_becomes_a_good(self):
        lead = self.make_lead(lines=[(self.labour, 1.0, 4.0, 60.0)])
        line = lead.sage_job_card_line_ids
        line.product_id = self.pipe
        self.assertEqual(line.hours, 0.0)
        self.assertEqual(line.price_unit, 12.5)
        self.assertEqual(line.invoice_quantity, 1.0)

    def test_job_card_form_loads_for_accounts_team_and_edits_lines(self):
        lead = self.make_lead()
        with Form(lead.with_user(self.accounts_clerk), view=JOB_CARD_FORM) as form:
            with form.sage_job_card_line_ids.new() as line:
                line.product_id = self.pipe
                line.quantity = 2
            form.sage_customer_reference = "PO-9"
        self.assertEqual(len(lead.sage_job_card_line_ids), 3)
        self.assertEqual(lead.sage_job_card_line_ids[-1].price_unit, 12.5)
        self.assertEqual(lead.sage_customer_reference, "PO-9")

    def test_crm_form_loads_for_salesman_without_invoice_rights(self):
        lead = self.make_lead()
        lead.sudo().user_id = self.salesman
        form = Form(lead.with_user(self.salesman))
        self.assertEqual(form.sage_invoicing_state, "new")

    # ------------------------------------------------------------------
    # Ready to invoice
    # ------------------------------------------------------------------

    def test_mark_ready_and_back(self):
        lead = self.make_lead(state="not_ready")
        lead.sudo().user_id = self.salesman
        lead.with_user(self.salesman).action_sage_mark_ready()
        self.assertEqual(lead.sage_invoicing_state, "new")
        lead.with_user(self.salesman).action_sage_mark_not_ready()
        self.assertEqual(lead.sage_invoicing_state, "not_ready")

    def test_mark_ready_refuses_empty_job_card(self):
        lead = self.make_lead(state="not_ready", lines=[])
        with self.assertRaisesRegex(UserError, "empty job card"):
            lead.action_sage_mark_ready()
        self.assertEqual(lead.sage_invoicing_state, "not_ready")

    # ------------------------------------------------------------------
    # Generate Invoice
    # ------------------------------------------------------------------

    def test_generate_invoice_from_the_lead(self):
        lead = self.make_lead()
        action = lead.action_sage_generate_invoice()

        invoice = lead.sage_invoice_ids
        self.assertEqual(len(invoice), 1)
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(
            action["params"]["message"], f"Invoice #{invoice.id} has been created successfully."
        )
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(invoice.move_type, "out_invoice")
        self.assertEqual(invoice.partner_id, self.customer)
        self.assertEqual(invoice.invoice_payment_term_id, self.pay_terms_b)
        self.assertEqual(invoice.ref, "PO-4711")
        self.assertEqual(invoice.invoice_origin, "Boiler repair")
        self.assertEqual(invoice.company_id, self.company_data["company"])
        self.assertEqual(invoice.create_uid, self.invoicing_user)
        self.assertRecordValues(
            invoice.invoice_line_ids,
            [
                {"product_id": self.labour.id, "quantity": 2.5, "price_unit": 60.0,
                 "price_subtotal": 150.0, "name": "Call-out labour"},
                {"product_id": self.pipe.id, "quantity": 4.0, "price_unit": 12.5,
                 "price_subtotal": 50.0, "name": "Copper pipe 15mm"},
            ],
        )  # fmt: skip
        self.assertEqual(invoice.invoice_line_ids.tax_ids, self.tax_sale_a)
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertEqual(lead.sage_invoice_id, invoice)
        self.assertEqual(lead.sage_invoice_count, 1)
        self.assertEqual(lead.sage_current_invoice_state, "draft")
        self.assertIn(f"#{invoice.id}", lead.message_ids[0].body)

    def test_server_action_one_lead(self):
        lead = self.make_lead()
        action = self.run_server_action(lead)
        invoice = lead.sage_invoice_ids
        self.assertEqual(len(invoice), 1)
        self.assertEqual(
            action["params"]["message"], f"Invoice #{invoice.id} has been created successfully."
        )
        self.assertEqual(lead.sage_invoicing_state, "active")

    def test_server_action_many_leads_one_notification(self):
        leads = (
            self.make_lead("Job A")
            | self.make_lead("Job B", lines=[(self.pipe, 1.0, 0.0, 30.0)])
            | self.make_lead("Job C", sage_customer_reference=False)
        )
        action = self.run_server_action(leads)

        invoices = leads.sage_invoice_ids
        self.assertEqual(len(invoices), 3)
        self.assertEqual(set(leads.mapped("sage_invoicing_state")), {"active"})
        for lead in leads:
            self.assertEqual(lead.sage_invoice_id.invoice_origin, lead.name)
        self.assertEqual(leads[1].sage_invoice_id.amount_untaxed, 30.0)
        self.assertFalse(leads[2].sage_invoice_id.ref)
        expected = ", ".join(f"#{lead.sage_invoice_id.id} ({lead.name})" for lead in leads)
        self.assertEqual(
            action["params"]["message"],
            f"3 invoices have been created successfully: {expected}.",
        )

    def test_server_action_is_bound_to_the_lead_list_for_invoicing_users(self):
        action = self.env.ref(SERVER_ACTION)
        self.assertEqual(action.binding_model_id.model, "crm.lead")
        self.assertEqual(action.binding_view_types, "list")
        self.assertEqual(action.state, "code")
        self.assertEqual(action.groups_id, self.env.ref("account.group_account_invoice"))

    def test_server_action_all_or_nothing_names_the_bad_lead(self):
        good = self.make_lead("Job A") | self.make_lead("Job B")
        bad = self.make_lead("Job without customer", partner=self.env["res.partner"])
        before = self.job_invoices()
        with self.assertRaises(UserError) as caught:
            self.run_server_action(good | bad)
        message = str(caught.exception)
        self.assertIn("No invoice was created", message)
        self.assertIn("all or nothing", message)
        self.assertIn("Job without customer: it has no customer", message)
        self.assertNotIn("Job A", message)
        self.assertEqual(self.job_invoices(), before)
        self.assertEqual(set((good | bad).mapped("sage_invoicing_state")), {"new"})

    def test_server_action_lists_every_bad_lead(self):
        bad_a = self.make_lead("Empty job", lines=[])
        bad_b = self.make_lead("Free job", lines=[(self.pipe, 1.0, 0.0, 0.0)])
        with self.assertRaises(UserError) as caught:
            self.run_server_action(self.make_lead("Job A") | bad_a | bad_b)
        message = str(caught.exception)
        self.assertIn("Empty job: its job card is empty", message)
        self.assertIn(
            "Free job: line “Copper pipe 15mm” has a zero or negative unit price", message
        )
        self.assertFalse(self.job_invoices())

    def test_bad_input_refused_and_nothing_created(self):
        archived = self._create_product(name="Old valve", lst_price=9.0)
        not_for_sale = self._create_product(name="Spare part", lst_price=9.0)
        cases = [
            ("no customer", {"partner": self.env["res.partner"]}, "it has no customer"),
            ("empty job card", {"lines": []}, "its job card is empty"),
            ("not ready", {"state": "not_ready"}, "it is not marked ready to invoice"),
            ("completed", {"state": "completed"}, "already been invoiced and sent to Sage"),
            ("archived product", {"lines": [(archived, 1.0, 0.0, 9.0)]},
             "product “Old valve” is archived"),
            ("not sold", {"lines": [(not_for_sale, 1.0, 0.0, 9.0)]},
             "product “Spare part” cannot be sold"),
            ("zero quantity", {"lines": [(self.pipe, 0.0, 0.0, 12.5)]},
             "zero or negative quantity"),
            ("negative quantity", {"lines": [(self.pipe, -2.0, 0.0, 12.5)]},
             "zero or negative quantity"),
            ("negative hours", {"lines": [(self.labour, 1.0, -1.0, 60.0)]}, "negative hours"),
            ("zero price", {"lines": [(self.pipe, 1.0, 0.0, 0.0)]},
             "zero or negative unit price"),
            ("negative price", {"lines": [(self.pipe, 1.0, 0.0, -5.0)]},
             "zero or negative unit price"),
        ]  # fmt: skip
        for label, kwargs, reason in cases:
            with self.subTest(label):
                lead = self.make_lead(name=f"Job {label}", **kwargs)
                archived.action_archive()
                not_for_sale.sale_ok = False
                state = lead.sage_invoicing_state
                with self.assertRaises(UserError) as caught:
                    lead.action_sage_generate_invoice()
                message = str(caught.exception)
                self.assertIn(f"Lead “Job {label}” cannot be invoiced", message)
                self.assertIn(reason, message)
                self.assertIn("No invoice was created", message)
                self.assertFalse(self.job_invoices())
                self.assertEqual(lead.sage_invoicing_state, state)
                archived.action_unarchive()
                not_for_sale.sale_ok = True

    def test_lost_lead_refused(self):
        lead = self.make_lead()
        lead.sudo().action_set_lost()
        with self.assertRaisesRegex(UserError, "it is lost or archived"):
            lead.action_sage_generate_invoice()
        self.assertFalse(self.job_invoices())

    def test_already_invoiced_lead_refused(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        with self.assertRaises(UserError) as caught:
            self.run_server_action(lead)
        self.assertIn(
            f"it has already been invoiced (invoice #{invoice.id})", str(caught.exception)
        )
        self.assertEqual(self.job_invoices(), invoice)

    def test_cancelled_invoice_can_be_generated_again(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        first = lead.sage_invoice_id
        first.sudo().button_cancel()
        self.assertFalse(lead.sage_invoice_id)
        self.assertEqual(lead.sage_current_invoice_state, "none")
        lead.action_sage_generate_invoice()
        self.assertEqual(len(lead.sage_invoice_ids), 2)
        self.assertNotEqual(lead.sage_invoice_id, first)
        self.assertEqual(lead.sage_invoice_count, 2)

    def test_customer_without_email_warns_but_invoices(self):
        no_email = self.env["res.partner"].create({"name": "Cash Customer"})
        lead = self.make_lead(partner=no_email)
        action = lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        self.assertTrue(invoice)
        self.assertEqual(action["params"]["type"], "warning")
        self.assertTrue(action["params"]["sticky"])
        message = action["params"]["message"]
        self.assertTrue(message.startswith(f"Invoice #{invoice.id} has been created successfully."))
        self.assertIn("Customer “Cash Customer” has no email address", message)

    def test_many_jobs_of_a_customer_without_email_warn_once(self):
        no_email = self.env["res.partner"].create({"name": "Cash Customer"})
        leads = self.make_lead("Job A", partner=no_email) | self.make_lead(
            "Job B", partner=no_email
        )
        action = self.run_server_action(leads | self.make_lead("Job C"))
        self.assertEqual(len(leads.sage_invoice_ids), 2)
        self.assertEqual(action["params"]["type"], "warning")
        self.assertEqual(action["params"]["message"].count("Cash Customer"), 1)

    def test_contact_of_a_company_with_email_does_not_warn(self):
        company = self.env["res.partner"].create(
            {"name": "Mill Ltd", "is_company": True, "email": "ap@mill.example"}
        )
        contact = self.env["res.partner"].create({"name": "Ann", "parent_id": company.id})
        action = self.make_lead(partner=contact).action_sage_generate_invoice()
        self.assertEqual(action["params"]["type"], "success")

    # ------------------------------------------------------------------
    # Permissions
    # ------------------------------------------------------------------

    def test_salesman_without_invoicing_right_is_refused(self):
        lead = self.make_lead()
        lead.sudo().user_id = self.salesman
        with self.assertRaisesRegex(AccessError, "Invoicing access right"):
            lead.with_user(self.salesman).action_sage_generate_invoice()
        with self.assertRaises(AccessError):
            self.run_server_action(lead, user=self.salesman)
        self.assertFalse(self.job_invoices())
        self.assertEqual(lead.sage_invoicing_state, "new")

    def test_accounts_team_without_sales_rights_invoices_jobs(self):
        lead = self.make_lead().with_user(self.accounts_clerk)
        self.run_server_action(lead, user=self.accounts_clerk)
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertEqual(lead.sage_invoice_id.create_uid, self.accounts_clerk)

    # ------------------------------------------------------------------
    # Update invoice while Active
    # ------------------------------------------------------------------

    def test_update_invoice_replaces_lines_and_reference(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        labour_line, pipe_line = lead.sage_job_card_line_ids
        lead.write(
            {
                "sage_customer_reference": "PO-4711-B",
                "sage_job_card_line_ids": [
                    Command.update(labour_line.id, {"hours": 4.0}),
                    Command.delete(pipe_line.id),
                    Command.create({"product_id": self.pipe.id, "quantity": 10.0}),
                ],
            }
        )
        action = lead.action_sage_update_invoice()
        self.assertEqual(action["params"]["message"], f"Invoice #{invoice.id} has been updated.")
        self.assertEqual(lead.sage_invoice_id, invoice)
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(invoice.ref, "PO-4711-B")
        self.assertRecordValues(
            invoice.invoice_line_ids,
            [
                {"product_id": self.labour.id, "quantity": 4.0, "price_unit": 60.0},
                {"product_id": self.pipe.id, "quantity": 10.0, "price_unit": 12.5},
            ],
        )
        self.assertEqual(invoice.amount_untaxed, 365.0)
        self.assertEqual(lead.sage_invoicing_state, "active")

    def test_update_refused_once_invoice_is_posted(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        invoice.sudo().action_post()
        lead.sage_job_card_line_ids[0].hours = 10.0
        self.assertEqual(lead.sage_current_invoice_state, "posted")
        with self.assertRaisesRegex(UserError, f"Invoice #{invoice.id} .* is no longer a draft"):
            lead.action_sage_update_invoice()
        self.assertEqual(invoice.invoice_line_ids[0].quantity, 2.5)

    def test_update_refused_with_bad_job_card(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        lead.sage_job_card_line_ids[1].quantity = 0.0
        with self.assertRaisesRegex(UserError, "zero or negative quantity"):
            lead.action_sage_update_invoice()
        self.assertEqual(invoice.invoice_line_ids[1].quantity, 4.0)

    def test_update_refused_without_invoice(self):
        lead = self.make_lead()
        with self.assertRaisesRegex(UserError, "no invoice to update"):
            lead.action_sage_update_invoice()

    def test_update_refused_for_salesman(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        lead.sudo().user_id = self.salesman
        with self.assertRaises(AccessError):
            lead.with_user(self.salesman).action_sage_update_invoice()

    # ------------------------------------------------------------------
    # Completed once the invoice reached Sage
    # ------------------------------------------------------------------

    def test_after_sent_hook_completes_and_wins_the_lead(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        invoice.sudo().action_post()
        # The push runs as an accounts user (or a cron) without CRM rights.
        invoice.with_user(self.accounts_clerk)._sage_after_sent()
        self.assertEqual(lead.sage_invoicing_state, "completed")
        self.assertEqual(lead.probability, 100)
        self.assertTrue(lead.stage_id.is_won)
        self.assertTrue(lead.active)
        with self.assertRaisesRegex(UserError, "already been invoiced and sent to Sage"):
            lead.action_sage_generate_invoice()
        with self.assertRaisesRegex(UserError, "is completed: its invoice is already in Sage"):
            lead.action_sage_update_invoice()

    def test_after_sent_hook_ignores_other_invoices(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        other = self.init_invoice("out_invoice", partner=self.customer, amounts=[100.0], post=True)
        other._sage_after_sent()
        self.assertEqual(lead.sage_invoicing_state, "active")
        # A cancelled earlier invoice of the lead does not complete it either.
        old = lead.sage_invoice_id
        old.sudo().button_cancel()
        lead.action_sage_generate_invoice()
        old._sage_after_sent()
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertNotEqual(lead.probability, 100)

    def test_invoice_shows_its_job_only_to_users_who_may_read_leads(self):
        lead = self.make_lead()
        lead.action_sage_generate_invoice()
        invoice = lead.sage_invoice_id
        billing_only = new_test_user(
            self.env,
            login="job_billing_only",
            groups="account.group_account_invoice",
            company_id=self.company_data["company"].id,
            company_ids=[Command.set(self.company_data["company"].ids)],
        )
        form = Form(invoice.with_user(billing_only))
        self.assertNotIn("sage_lead_id", form._view["fields"])
        form = Form(invoice.with_user(self.accounts_clerk))
        self.assertEqual(form.sage_lead_id, lead)

    def test_demo_helper_invoices_when_a_sales_journal_exists(self):
        lead = self.make_lead()
        self.assertTrue(lead.env["crm.lead"]._sage_demo_generate_invoices(lead.ids))
        self.assertEqual(lead.sage_invoicing_state, "active")
        self.assertEqual(lead.sage_invoice_id.state, "draft")

    # ------------------------------------------------------------------
    # Menus and actions
    # ------------------------------------------------------------------

    def test_invoicing_actions_filter_by_state(self):
        leads = {
            state: self.make_lead(f"Job {state}", state=state)
            for state in ("not_ready", "new", "active", "completed")
        }
        for state in ("new", "active", "completed"):
            action = self.env.ref(f"sage_one_connector.crm_lead_action_sage_invoicing_{state}")
            found = self.env["crm.lead"].search(ast.literal_eval(action.domain))
            self.assertIn(leads[state], found)
            self.assertFalse((found & self.env["crm.lead"].concat(*leads.values())) - leads[state])
        crm_menu = self.env.ref("sage_one_connector.menu_crm_sage_invoicing")
        self.assertEqual(crm_menu.parent_id, self.env.ref("crm.crm_menu_root"))
        sage_menu = self.env.ref("sage_one_connector.menu_sage_job_invoicing_new")
        self.assertEqual(sage_menu.parent_id, self.env.ref("sage_one_connector.menu_sage_root"))
