import logging

from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError

SAGE_INVOICING_STATES = [
    ("not_ready", "Not ready"),
    ("new", "New"),
    ("active", "Active"),
    ("completed", "Completed"),
]

INVOICING_GROUP = "account.group_account_invoice"

_logger = logging.getLogger(__name__)


class CrmLead(models.Model):
    """A lead as a job: its job card becomes a customer invoice sent to Sage.

    Invoicing states: Not ready (job in progress) → New (job done, ready to be
    invoiced) → Active (draft invoice generated, job card may still change) →
    Completed (the invoice reached Sage; the lead is won).
    """

    _inherit = "crm.lead"

    sage_job_description = fields.Html("Job description")
    sage_job_card_line_ids = fields.One2many(
        "sage.job.card.line", "lead_id", string="Job card lines", copy=True
    )
    sage_customer_reference = fields.Char(
        "Customer reference / PO",
        tracking=True,
        help="The customer's order or PO number, printed as the invoice reference.",
    )
    sage_job_card_total = fields.Monetary(
        "Job card total",
        compute="_compute_sage_job_card_total",
        currency_field="company_currency",
    )
    sage_invoicing_state = fields.Selection(
        SAGE_INVOICING_STATES,
        string="Invoicing status",
        default="not_ready",
        required=True,
        copy=False,
        tracking=True,
        index=True,
    )
    sage_invoice_ids = fields.One2many(
        "account.move",
        "sage_lead_id",
        string="Invoices",
        readonly=True,
        copy=False,
        groups="account.group_account_invoice,account.group_account_readonly",
    )
    sage_invoice_id = fields.Many2one(
        "account.move",
        string="Current invoice",
        compute="_compute_sage_invoice",
        groups="account.group_account_invoice,account.group_account_readonly",
        help="The latest invoice generated from the job card that is not cancelled.",
    )
    sage_invoice_count = fields.Integer(
        compute="_compute_sage_invoice",
        groups="account.group_account_invoice,account.group_account_readonly",
    )
    # Not restricted to invoicing groups: the lead form decides with it which
    # of Generate Invoice / Update invoice makes sense, for any user.
    sage_current_invoice_state = fields.Selection(
        [("none", "No invoice"), ("draft", "Draft"), ("posted", "Posted")],
        string="Current invoice status",
        compute="_compute_sage_current_invoice_state",
    )

    @api.depends("sage_job_card_line_ids.price_subtotal")
    def _compute_sage_job_card_total(self):
        for lead in self:
            lead.sage_job_card_total = sum(lead.sage_job_card_line_ids.mapped("price_subtotal"))

    @api.depends("sage_invoice_ids.state")
    def _compute_sage_invoice(self):
        for lead in self:
            live = lead.sage_invoice_ids.filtered(lambda move: move.state != "cancel")
            lead.sage_invoice_id = live.sorted("id")[-1:]
            lead.sage_invoice_count = len(lead.sage_invoice_ids)

    @api.depends("sage_invoice_ids.state")
    def _compute_sage_current_invoice_state(self):
        # sudo: only the status of the lead's own invoice, needed to show or
        # hide buttons for users who may not read invoices.
        for lead in self:
            invoice = lead.sudo().sage_invoice_id
            lead.sage_current_invoice_state = invoice.state if invoice else "none"

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------

    def action_sage_mark_ready(self):
        """The job is done: the lead appears under Invoicing – New."""
        for lead in self:
            if lead.sage_invoicing_state != "not_ready":
                raise UserError(
                    self.env._(
                        "Lead “%(lead)s” is already ready to invoice or invoiced.",
                        lead=lead.display_name,
                    )
                )
            if not lead.sage_job_card_line_ids:
                raise UserError(
                    self.env._(
                        "Lead “%(lead)s” has an empty job card: add what was supplied "
                        "or done before marking it ready to invoice.",
                        lead=lead.display_name,
                    )
                )
        self.write({"sage_invoicing_state": "new"})
        return True

    def action_sage_mark_not_ready(self):
        """Take a lead back out of Invoicing – New (the job is not finished)."""
        for lead in self:
            if lead.sage_invoicing_state != "new":
                raise UserError(
                    self.env._(
                        "Only a lead waiting to be invoiced can be set back to not "
                        "ready; lead “%(lead)s” is not.",
                        lead=lead.display_name,
                    )
                )
        self.write({"sage_invoicing_state": "not_ready"})
        return True

    def action_sage_generate_invoice(self):
        """Create one draft customer invoice per lead from its job card.

        All or nothing: when one selected lead cannot be invoiced, no invoice
        is created and the error lists every lead that needs fixing.
        """
        if not self:
            raise UserError(self.env._("Select at least one lead to invoice."))
        self._sage_check_invoicing_rights()
        problems = [(lead, lead._sage_invoice_problems()) for lead in self]
        problems = [(lead, reasons) for lead, reasons in problems if reasons]
        if problems:
            raise UserError(self._sage_format_problems(problems))

        created = []
        for lead in self:
            company = lead.company_id or self.env.company
            invoice = (
                self.env["account.move"]
                .with_company(company)
                .create(lead._sage_prepare_invoice_values())
            )
            # Writing the state on the lead row also serialises two users
            # invoicing the same lead at once: the second transaction fails
            # on the concurrent update and, retried, finds the lead Active.
            lead.sage_invoicing_state = "active"
            lead._message_log(
                body=Markup(self.env._("Invoice %(invoice)s created from the job card."))
                % {"invoice": invoice._get_html_link(title=f"#{invoice.id}")}
            )
            created.append((lead, invoice))

        # One warning per customer, however many of its jobs were invoiced.
        warnings = self._sage_invoice_warnings()
        if len(created) == 1:
            message = self.env._(
                "Invoice #%(number)s has been created successfully.",
                number=created[0][1].id,
            )
        else:
            message = self.env._(
                "%(count)s invoices have been created successfully: %(invoices)s.",
                count=len(created),
                invoices=", ".join(
                    self.env._("#%(number)s (%(lead)s)", number=invoice.id, lead=lead.display_name)
                    for lead, invoice in created
                ),
            )
        return self._sage_notification(message, warnings)

    def action_sage_update_invoice(self):
        """Bring the draft invoice in line with the edited job card."""
        self._sage_check_invoicing_rights()
        for lead in self:
            invoice = lead.sage_invoice_id
            if lead.sage_invoicing_state == "completed":
                raise UserError(
                    self.env._(
                        "Lead “%(lead)s” is completed: its invoice is already in Sage and "
                        "can no longer follow the job card. Correct it with a credit note.",
                        lead=lead.display_name,
                    )
                )
            if lead.sage_invoicing_state != "active" or not invoice:
                raise UserError(
                    self.env._(
                        "Lead “%(lead)s” has no invoice to update: generate the invoice first.",
                        lead=lead.display_name,
                    )
                )
            if invoice.state != "draft":
                raise UserError(
                    self.env._(
                        "Invoice #%(number)s of lead “%(lead)s” is no longer a draft, "
                        "so it cannot be updated from the job card. Reset it to draft "
                        "first, or correct it with a credit note.",
                        number=invoice.id,
                        lead=lead.display_name,
                    )
                )
        problems = [(lead, lead._sage_invoice_problems(updating=True)) for lead in self]
        problems = [(lead, reasons) for lead, reasons in problems if reasons]
        if problems:
            raise UserError(self._sage_format_problems(problems, updating=True))

        for lead in self:
            invoice = lead.sage_invoice_id
            values = lead._sage_prepare_invoice_values()
            for key in ("move_type", "invoice_line_ids", "sage_lead_id"):
                values.pop(key)
            values["invoice_line_ids"] = [
                Command.delete(line.id) for line in invoice.invoice_line_ids
            ] + [
                Command.create(line._sage_prepare_invoice_line())
                for line in lead.sage_job_card_line_ids
            ]
            invoice.write(values)
            lead._message_log(
                body=Markup(self.env._("Invoice %(invoice)s updated from the job card."))
                % {"invoice": invoice._get_html_link(title=f"#{invoice.id}")}
            )
        if len(self) == 1:
            message = self.env._(
                "Invoice #%(number)s has been updated.", number=self.sage_invoice_id.id
            )
        else:
            message = self.env._("%(count)s invoices have been updated.", count=len(self))
        return self._sage_notification(message, self._sage_invoice_warnings())

    def action_view_sage_invoices(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "account.action_move_out_invoice_type"
        )
        action["domain"] = [("sage_lead_id", "=", self.id)]
        action["context"] = {"default_move_type": "out_invoice", "create": False}
        if len(self.sage_invoice_ids) == 1:
            action["views"] = [(False, "form")]
            action["res_id"] = self.sage_invoice_ids.id
        return action

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def _sage_check_invoicing_rights(self):
        """Refuse, server side, users who may not create customer invoices."""
        if not self.env.user.has_group(INVOICING_GROUP):
            raise AccessError(
                self.env._(
                    "You are not allowed to create or update invoices from job cards: "
                    "this needs the Invoicing access right (Accounting: Billing). "
                    "Ask your administrator."
                )
            )
        self.check_access("write")
        self.env["account.move"].check_access("create")

    def _sage_invoice_problems(self, updating=False):
        """Reasons (translated) why the job card of this lead cannot be invoiced."""
        self.ensure_one()
        problems = []
        if not self.partner_id:
            problems.append(self.env._("it has no customer"))
        if not updating:
            if self.sage_invoicing_state == "not_ready":
                problems.append(self.env._("it is not marked ready to invoice"))
            elif self.sage_invoicing_state == "completed":
                problems.append(self.env._("it has already been invoiced and sent to Sage"))
            elif self.sage_invoicing_state == "active" and self.sudo().sage_invoice_id:
                problems.append(
                    self.env._(
                        "it has already been invoiced (invoice #%(number)s)",
                        number=self.sudo().sage_invoice_id.id,
                    )
                )
        if not self.active:
            problems.append(self.env._("it is lost or archived"))
        if not self.sage_job_card_line_ids:
            problems.append(self.env._("its job card is empty"))
        for line in self.sage_job_card_line_ids:
            problems.extend(line._sage_check_invoiceable())
        return problems

    def _sage_invoice_warnings(self):
        """Non-blocking remarks (translated) about invoices made from these leads.

        A customer without an email still gets an invoice: it only matters when
        the invoice is sent, as Sage matches customers by email first.
        """
        warnings = []
        for partner in self.partner_id:
            if not (partner.email or partner.commercial_partner_id.email):
                warnings.append(
                    self.env._(
                        "Customer “%(customer)s” has no email address: add one before "
                        "sending the invoice to Sage, which matches customers by email.",
                        customer=partner.display_name,
                    )
                )
        return warnings

    def _sage_format_problems(self, problems, updating=False):
        if len(self) == 1:
            lead, reasons = problems[0]
            if updating:
                return self.env._(
                    "The invoice of lead “%(lead)s” cannot be updated: %(reasons)s.",
                    lead=lead.display_name,
                    reasons="; ".join(reasons),
                )
            return self.env._(
                "Lead “%(lead)s” cannot be invoiced: %(reasons)s. No invoice was created.",
                lead=lead.display_name,
                reasons="; ".join(reasons),
            )
        details = "\n".join(
            f"• {lead.display_name}: {'; '.join(reasons)}" for lead, reasons in problems
        )
        if updating:
            return self.env._(
                "No invoice was updated: every selected lead must be valid (all or "
                "nothing). Fix these leads and try again:\n%(details)s",
                details=details,
            )
        return self.env._(
            "No invoice was created: every selected lead must be ready to invoice (all "
            "or nothing). Fix these leads and try again:\n%(details)s",
            details=details,
        )

    def _sage_prepare_invoice_values(self):
        self.ensure_one()
        partner = self.partner_id
        return {
            "move_type": "out_invoice",
            "partner_id": partner.id,
            "invoice_payment_term_id": partner.property_payment_term_id.id,
            "ref": self.sage_customer_reference or False,
            "invoice_origin": self.name,
            "sage_lead_id": self.id,
            "invoice_line_ids": [
                Command.create(line._sage_prepare_invoice_line())
                for line in self.sage_job_card_line_ids
            ],
        }

    def _sage_notification(self, message, warnings):
        if warnings:
            # Notifications do not keep line breaks: one paragraph of sentences.
            message = " ".join([message, *warnings])
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning" if warnings else "success",
                "message": message,
                "sticky": bool(warnings),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _sage_demo_generate_invoices(self, lead_ids):
        """Demo data: invoice these leads, if their company can invoice yet.

        A demo database may have no chart of accounts (hence no sales journal)
        when this runs; the leads then simply stay under Invoicing – New.
        """
        leads = self.browse(lead_ids).exists()
        companies = leads.company_id or self.env.company
        journals = self.env["account.journal"].search_count(
            [("type", "=", "sale"), ("company_id", "in", companies.ids)]
        )
        if not journals:
            _logger.info("Demo job invoices not generated: no sales journal yet.")
            return False
        leads.action_sage_generate_invoice()
        return True

    def _sage_complete_invoicing(self, invoices):
        """The job's invoice reached Sage: the lead is Completed and won.

        Called from the Sage push, often by an accounts user or a cron who may
        have no CRM rights; completing the lead is a consequence of the push,
        not a user edit, hence sudo.
        """
        leads = self.sudo().filtered(
            lambda lead: lead.sage_invoicing_state == "active" and lead.sage_invoice_id in invoices
        )
        if not leads:
            return
        leads.write({"sage_invoicing_state": "completed"})
        leads.action_set_won()
        for lead in leads:
            lead._message_log(
                body=self.env._("The invoice reached Sage: the job is completed and the lead won.")
            )
