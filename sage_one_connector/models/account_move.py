"""Sending customer invoices, credit notes, adjustments and write-offs to Sage.

A push has three steps, so that a batch runner can send the HTTP part of many
documents in parallel threads while all database work stays in the main one:

1. ``jobs, problems = moves._sage_prepare_push(clients=clients)`` (ORM, main
   thread): rights, every pre-flight problem at once, row locks, the Sage
   contact of each customer (found or created), the payload and the
   idempotency id of each document; the moves go to *sending* and this is
   COMMITTED before any document is posted (not under tests).
2. ``result = send_document(clients[job_connection_id], job)`` for each job
   (``sage_api.push``: HTTP only, no ORM, thread-safe, never raises for Sage
   errors). ``job.move_id`` tells which move; ``move.sage_connection_id`` which
   client.
3. ``moves.browse(result.move_id)._sage_apply_push_result(result)`` (ORM, main
   thread): state, Sage number, chatter, total check, ``_sage_after_sent()``;
   committed per document.

``_sage_push_now()`` chains the three synchronously; ``action_sage_send`` is
the button and the list's server action.
"""

import logging
from collections import defaultdict
from datetime import timedelta

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models, modules
from odoo.exceptions import AccessError, UserError

from ..sage_api import documents, make_idempotency_id
from ..sage_api.exceptions import SageError, SageReauthorizationRequired, SageValidationError
from ..sage_api.payments import SAGE_STATUS_TO_PAYMENT_STATUS
from ..sage_api.push import AllocationPlan, PreparedPush, send_document

_logger = logging.getLogger(__name__)

SAGE_STATES = [
    ("not_sent", "Not sent"),
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("uncertain", "Uncertain"),
    ("error", "Error"),
    ("conflict", "Conflict"),
]

SAGE_PAYMENT_STATUSES = [
    ("unpaid", "Unpaid"),
    ("part_paid", "Part-paid"),
    ("paid", "Paid"),
    ("void", "Void"),
    ("written_off", "Written Off"),
    ("paid_written_off", "Paid/Written Off"),
]

SAGE_WRITE_OFF_STATES = [
    ("sending", "Sending"),
    ("done", "Written off"),
    ("unallocated", "Credit note not allocated"),
    ("uncertain", "Uncertain"),
    ("error", "Error"),
]

TEAM_GROUP = "sage_one_connector.group_sage_accounts_team"
MANAGER_GROUP = "sage_one_connector.group_sage_financial_manager"

# A push that has been "sending" for longer than this was interrupted (worker
# killed): it may be retried, and the retry looks the document up first.
SENDING_TIMEOUT = timedelta(minutes=10)

# Fields a push writes; re-read after locking the rows.
PUSH_FIELDS = [
    "sage_state",
    "sage_id",
    "sage_sending_since",
    "sage_idempotency_id",
    "sage_push_generation",
    "sage_write_off_state",
    "sage_write_off_since",
    "sage_payment_status",
]

# Fields only the connector's own code writes. A user who could set them over
# RPC could unlink a document from Sage and send it again (a duplicate in
# Sage), or clear an *uncertain* state that a manager must resolve.
SAGE_SYNC_FIELDS = frozenset(
    {
        "sage_state",
        "sage_connection_id",
        "sage_id",
        "sage_number",
        "sage_sent_date",
        "sage_last_error",
        "sage_attempts",
        "sage_outstanding_amount",
        "sage_last_paid_date",
        "sage_idempotency_id",
        "sage_push_generation",
        "sage_sending_since",
        "sage_total_amount",
        "sage_allocation_id",
        "sage_candidate_id",
        "sage_candidates_info",
        "sage_write_off_state",
        "sage_write_off_id",
        "sage_write_off_number",
        "sage_write_off_amount",
        "sage_write_off_idempotency_id",
        "sage_write_off_generation",
        "sage_write_off_since",
    }
)


class AccountMove(models.Model):
    _inherit = "account.move"

    sage_state = fields.Selection(
        SAGE_STATES,
        string="Sage status",
        default="not_sent",
        required=True,
        copy=False,
        tracking=True,
        index=True,
    )
    sage_connection_id = fields.Many2one("sage.connection", copy=False, readonly=True)
    sage_id = fields.Char("Sage ID", copy=False, readonly=True, index="btree_not_null")
    sage_number = fields.Char("Sage number", copy=False, readonly=True)
    sage_url = fields.Char("Open in Sage", compute="_compute_sage_url")
    sage_sent_date = fields.Datetime("Sent to Sage", copy=False, readonly=True)
    sage_last_error = fields.Text("Last Sage error", copy=False, readonly=True)
    sage_attempts = fields.Integer("Sage attempts", copy=False, readonly=True)
    sage_payment_status = fields.Selection(
        SAGE_PAYMENT_STATUSES, string="Sage payment status", copy=False, tracking=True
    )
    sage_outstanding_amount = fields.Monetary(
        "Outstanding in Sage", copy=False, readonly=True, currency_field="currency_id"
    )
    sage_last_paid_date = fields.Date("Last paid in Sage", copy=False, readonly=True)

    # Exactly once: the idempotency id of the current attempt is stored (and
    # committed) before the request and reused until Sage definitively refuses.
    sage_idempotency_id = fields.Char(copy=False, readonly=True)
    sage_push_generation = fields.Integer(copy=False, readonly=True)
    sage_sending_since = fields.Datetime(copy=False, readonly=True)
    sage_total_amount = fields.Monetary(
        "Total in Sage", copy=False, readonly=True, currency_field="currency_id"
    )
    sage_allocation_id = fields.Char("Sage allocation ID", copy=False, readonly=True)
    # Uncertain outcome: what Sage holds that may be this document.
    sage_candidate_id = fields.Char(
        "Sage candidate ID",
        copy=False,
        help="Sage document that may be this one; a financial manager can link it.",
    )
    sage_candidates_info = fields.Text("Sage candidates", copy=False, readonly=True)

    # Write-off of the open balance (on the invoice written off)
    sage_write_off_state = fields.Selection(
        SAGE_WRITE_OFF_STATES, "Sage write-off", copy=False, readonly=True
    )
    sage_write_off_id = fields.Char("Sage write-off credit note ID", copy=False, readonly=True)
    sage_write_off_number = fields.Char("Sage write-off credit note", copy=False, readonly=True)
    sage_write_off_amount = fields.Monetary(
        "Written off in Sage", copy=False, readonly=True, currency_field="currency_id"
    )
    sage_write_off_idempotency_id = fields.Char(copy=False, readonly=True)
    sage_write_off_generation = fields.Integer(copy=False, readonly=True)
    sage_write_off_since = fields.Datetime(copy=False, readonly=True)

    sage_document_kind = fields.Selection(
        [("invoice", "Invoice"), ("adjustment", "Adjustment"), ("credit_note", "Credit note")],
        compute="_compute_sage_document_kind",
        help="Adjustments correct an earlier invoice (reversal or debit note).",
    )
    sage_user_can_push = fields.Boolean(compute="_compute_sage_user_can_push")

    _sql_constraints = [
        (
            "sage_id_uniq",
            "UNIQUE(sage_connection_id, sage_id)",
            "This Sage document is already linked to another entry.",
        ),
    ]

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------
    @api.depends("sage_id", "sage_connection_id.app_url", "move_type")
    def _compute_sage_url(self):
        for move in self:
            app_url = move.sage_connection_id.app_url
            if move.sage_id and app_url:
                kind = "sales_credit_notes" if move.move_type == "out_refund" else "sales_invoices"
                move.sage_url = f"{app_url.rstrip('/')}/{kind}/{move.sage_id}"
            else:
                move.sage_url = False

    @api.depends("move_type", "reversed_entry_id")
    def _compute_sage_document_kind(self):
        for move in self:
            move.sage_document_kind = move._sage_document_kind()

    @api.depends_context("uid")
    @api.depends("move_type", "reversed_entry_id")
    def _compute_sage_user_can_push(self):
        is_team = self.env.user.has_group(TEAM_GROUP)
        is_manager = self.env.user.has_group(MANAGER_GROUP)
        for move in self:
            kind = move._sage_document_kind()
            move.sage_user_can_push = (
                is_manager
                if kind in ("adjustment", "credit_note")
                else (is_team and kind == "invoice")
            )

    def _sage_document_kind(self):
        """'invoice', 'adjustment' (an invoice correcting another one: a
        reversal or a debit note), 'credit_note', or False (not for Sage)."""
        self.ensure_one()
        if self.move_type == "out_refund":
            return "credit_note"
        if self.move_type == "out_invoice":
            debit_origin = self.debit_origin_id if "debit_origin_id" in self._fields else False
            if self.reversed_entry_id or debit_origin:
                return "adjustment"
            return "invoice"
        return False

    # ------------------------------------------------------------------
    # Hooks
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._sage_check_sync_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._sage_check_sync_fields(vals)
        return super().write(vals)

    def _sage_check_sync_fields(self, vals):
        """Refuse the connector's own fields to the accounts team (form, import, RPC).

        The connector writes them through `_sage_write_sync`. Financial managers
        (who approve what reaches Sage) and administrators may still repair a
        record by hand.
        """
        if (
            self.env.is_superuser()
            or self.env.user.has_group("base.group_system")
            or self.env.user.has_group("sage_one_connector.group_sage_financial_manager")
        ):
            return
        touched = SAGE_SYNC_FIELDS.intersection(vals)
        if touched:
            raise AccessError(
                self.env._(
                    "The Sage fields of a document are set by the connector only "
                    "(%(fields)s). Use Send to Sage, Write off in Sage or Link candidate.",
                    fields=", ".join(sorted(touched)),
                )
            )

    def _sage_write_sync(self, vals):
        """Write the connector's own fields, after the caller checked the rights."""
        return self.sudo().write(vals)

    def _sage_after_sent(self):
        """Hook called once documents have reached Sage (same transaction)."""

    # ------------------------------------------------------------------
    # Buttons and server actions
    # ------------------------------------------------------------------
    def action_sage_send(self):
        """Send to Sage (button and list action): push synchronously, one by one."""
        if not self:
            raise UserError(self.env._("Select the documents to send to Sage."))
        results = self._sage_push_now()
        return self._sage_notification(results)

    def action_sage_write_off(self):
        """Write the open balance off in Sage (financial managers)."""
        if not self:
            raise UserError(self.env._("Select the invoices to write off in Sage."))
        self._sage_check_push_rights("write_off")
        problems = self._sage_write_off_problems()
        if problems:
            raise UserError(self._sage_format_problems(problems, operation="write_off"))
        self._sage_lock_for_push()
        # Another transaction may have written them off while we waited.
        problems = self._sage_write_off_problems()
        if problems:
            raise UserError(self._sage_format_problems(problems, operation="write_off"))
        clients = {}
        jobs = [move._sage_prepare_write_off(clients) for move in self]
        self._sage_commit()
        results = []
        for job in jobs:
            move = self.browse(job.move_id)
            result = send_document(clients[move.sage_connection_id.id], job)
            move._sage_apply_push_result(result)
            results.append(result)
        return self._sage_notification(results)

    def action_sage_allocate(self):
        """Allocate credit notes already in Sage to the invoice they reverse
        (the allocation failed, or the invoice reached Sage after them)."""
        if not self:
            raise UserError(self.env._("Select the credit notes to allocate in Sage."))
        self._sage_check_push_rights()
        problems = self._sage_allocation_problems()
        if problems:
            raise UserError(self._sage_format_problems(problems, operation="allocate"))
        self._sage_lock_for_push()
        problems = self._sage_allocation_problems()
        if problems:
            raise UserError(self._sage_format_problems(problems, operation="allocate"))
        clients = {}
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        jobs = []
        for move in self:
            connection = move.sage_connection_id
            self._sage_client_or_raise(connection, clients)
            contact_id = move.commercial_partner_id._sage_contact_link(connection).sage_contact_id
            date = fields.Date.to_string(move.invoice_date)
            jobs.append(
                PreparedPush(
                    move_id=move.id,
                    operation="allocate",
                    resource=documents.CREDIT_NOTE,
                    payload={},
                    idempotency_id="",
                    contact_id=contact_id,
                    date=date,
                    total=documents.money(move.sage_total_amount or move.amount_total),
                    existing_id=move.sage_id,
                    existing_number=move.sage_number,
                    allocation=AllocationPlan(
                        contact_id=contact_id,
                        invoice_id=move.reversed_entry_id.sage_id,
                        date=date,
                        idempotency_id=make_idempotency_id(
                            db_uuid, self._name, move.id, "allocation", move.sage_push_generation
                        ),
                    ),
                )
            )
        results = []
        for job in jobs:
            move = self.browse(job.move_id)
            result = send_document(clients[move.sage_connection_id.id], job)
            move._sage_apply_push_result(result)
            results.append(result)
        return self._sage_notification(results)

    def _sage_allocation_problems(self):
        problems = defaultdict(list)
        for move in self:
            add = problems[move].append
            connection_problem = move._sage_connection_problem(move._sage_connection())
            if connection_problem:
                add(connection_problem)
            origin = move.reversed_entry_id
            if move.move_type != "out_refund" or move.sage_state != "sent" or not move.sage_id:
                add(self.env._("Only credit notes already in Sage can be allocated."))
            elif move.sage_allocation_id:
                add(self.env._("It is already allocated in Sage."))
            elif (
                not origin
                or origin.sage_state != "sent"
                or not origin.sage_id
                or origin.sage_connection_id != move.sage_connection_id
            ):
                add(self.env._("The invoice it reverses is not in Sage: send it first."))
            elif not move.commercial_partner_id._sage_contact_link(move.sage_connection_id):
                add(self.env._("The customer is not linked to a Sage contact."))
        return {move: messages for move, messages in problems.items() if messages}

    def action_sage_link_candidate(self):
        """Link an uncertain document to the Sage document a manager chose."""
        self._sage_check_manager()
        for move in self:
            if move.sage_state != "uncertain" or not move.sage_candidate_id:
                raise UserError(
                    self.env._(
                        "%(move)s has no Sage document to link: only uncertain documents "
                        "with a candidate can be linked.",
                        move=move.display_name,
                    )
                )
            connection = move._sage_connection()
            client = move._sage_client_or_raise(connection, {})
            try:
                if move.move_type == "out_refund":
                    record = client.get_sales_credit_note(move.sage_candidate_id)
                else:
                    record = client.get_sales_invoice(move.sage_candidate_id)
            except SageError as error:
                raise UserError(
                    self.env._(
                        "Sage does not confirm the document %(id)s: %(error)s",
                        id=move.sage_candidate_id,
                        error=error,
                    )
                ) from None
            move._sage_check_not_linked_elsewhere(connection, record["id"])
            number = record.get("invoice_number") or record.get("credit_note_number")
            move._sage_write_sync(
                {
                    "sage_state": "sent",
                    "sage_connection_id": connection.id,
                    "sage_id": record["id"],
                    "sage_number": number or record.get("displayed_as"),
                    "sage_sent_date": fields.Datetime.now(),
                    "sage_sending_since": False,
                    "sage_candidate_id": False,
                    "sage_candidates_info": False,
                    "sage_last_error": False,
                    "sage_total_amount": documents.money(record.get("total_amount")),
                    "sage_payment_status": SAGE_STATUS_TO_PAYMENT_STATUS.get(
                        (record.get("status") or {}).get("id"), "unpaid"
                    ),
                }
            )
            move._message_log(
                body=Markup("%s <b>%s</b>")
                % (self.env._("Linked by hand to the Sage document"), move.sage_number)
            )
            move._sage_after_sent()
        return True

    # ------------------------------------------------------------------
    # Rights
    # ------------------------------------------------------------------
    def _sage_check_push_rights(self, operation="send"):
        """Raise AccessError unless the user may push these documents.

        Accounts team: customer invoices. Financial manager: also credit notes,
        adjustments, write-offs and documents whose outcome is uncertain.
        Record rules (other companies) apply too.
        """
        self.check_access("write")
        if self.env.su:
            return
        needs_manager = operation == "write_off" or any(
            move._sage_document_kind() in ("credit_note", "adjustment")
            or move.sage_state == "uncertain"
            for move in self
        )
        if needs_manager and not self.env.user.has_group(MANAGER_GROUP):
            if operation == "write_off":
                message = self.env._("Only financial managers can write invoices off in Sage.")
            elif any(move.sage_state == "uncertain" for move in self):
                message = self.env._(
                    "Only financial managers can resend a document that may already be in Sage."
                )
            else:
                message = self.env._(
                    "Only financial managers can send credit notes and adjustments to Sage."
                )
            raise AccessError(message)
        if not self.env.user.has_group(TEAM_GROUP):
            raise AccessError(self.env._("Only the accounts team can send documents to Sage."))

    def _sage_check_manager(self):
        self.check_access("write")
        if not self.env.su and not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(
                self.env._("Only financial managers can resolve uncertain Sage documents.")
            )

    # ------------------------------------------------------------------
    # Pre-flight
    # ------------------------------------------------------------------
    def _sage_connection(self):
        self.ensure_one()
        return self.env["sage.connection"]._for_company(self.company_id, raise_if_missing=False)

    def _sage_connection_problem(self, connection):
        company = self.company_id.display_name
        if not connection or not connection.active or connection.state == "not_connected":
            return self.env._("The company %(company)s is not connected to Sage.", company=company)
        if connection.state == "needs_reconnect":
            return self.env._(
                "The Sage connection of %(company)s has expired: a system administrator "
                "must reconnect it.",
                company=company,
            )
        return None

    def _sage_is_being_sent(self, state_field="sage_state", since_field="sage_sending_since"):
        self.ensure_one()
        if self[state_field] != "sending":
            return False
        since = self[since_field]
        return not since or fields.Datetime.now() - since < SENDING_TIMEOUT

    def _sage_push_problems(self):
        """Everything that stops these moves from being sent: {move: [message]}.

        Local checks only (no call to Sage), all collected, so the user sees
        every problem at once.
        """
        problems = defaultdict(list)
        ledger_cache = {}
        for move in self:
            add = problems[move].append
            connection = move._sage_connection()
            connection_problem = move._sage_connection_problem(connection)
            if connection_problem:
                add(connection_problem)
            if move.move_type not in ("out_invoice", "out_refund"):
                add(self.env._("Only customer invoices and credit notes can be sent to Sage."))
                continue
            if move.state != "posted":
                add(self.env._("Only posted documents can be sent to Sage; post it first."))
                continue
            if move.sage_state == "sent" or move.sage_id:
                add(
                    self.env._(
                        "It is already in Sage (%(number)s).",
                        number=move.sage_number or move.sage_id,
                    )
                )
                continue
            if move._sage_is_being_sent():
                add(self.env._("It is already being sent to Sage; wait a moment."))
                continue
            if connection_problem:
                continue
            for problem in move._sage_document_problems(connection, ledger_cache):
                add(problem)
        return {move: messages for move, messages in problems.items() if messages}

    def _sage_document_problems(self, connection, ledger_cache):
        self.ensure_one()
        problems = []
        partner = self.commercial_partner_id
        if not partner._sage_contact_link(connection) and not self._sage_partner_emails():
            problems.append(
                self.env._(
                    "The customer %(partner)s has no email address and is not linked to a "
                    "Sage contact: add an email address or link the customer to a Sage contact.",
                    partner=partner.display_name,
                )
            )
        currency = self.currency_id.name
        if currency != self._sage_business_currency(connection):
            enabled = connection.currency_ids.filtered("active").mapped("sage_id")
            if currency not in enabled:
                problems.append(
                    self.env._(
                        "The currency %(currency)s is not available in Sage.", currency=currency
                    )
                )
            elif not connection.multi_currency_enabled:
                problems.append(
                    self.env._(
                        "It is in %(currency)s, but multi-currency is not enabled in the Sage "
                        "business %(business)s: switch it on in Sage, then synchronise the "
                        "reference data.",
                        currency=currency,
                        business=connection.business_name or connection.business_id,
                    )
                )
        lines = self._sage_product_lines()
        if not lines:
            problems.append(self.env._("It has no invoice lines to send."))
        if self.currency_id.compare_amounts(self.amount_total, 0) <= 0:
            problems.append(
                self.env._(
                    "Its total is %(total)s: Sage only accepts documents with a positive total.",
                    total=self.amount_total,
                )
            )
        seen = set()
        for line in lines:
            label = line.name or line.product_id.display_name or "-"
            if self.currency_id.compare_amounts(line.price_subtotal, 0) < 0:
                problems.append(
                    self.env._(
                        "The line “%(line)s” has a negative amount (%(amount)s): Sage refuses "
                        "negative lines; send a credit note instead.",
                        line=label,
                        amount=line.price_subtotal,
                    )
                )
            if len(line.tax_ids) > 1:
                problems.append(
                    self.env._(
                        "The line “%(line)s” has several taxes: Sage accepts one tax rate "
                        "per line.",
                        line=label,
                    )
                )
            elif line.tax_ids:
                tax = line.tax_ids
                rate = tax.sage_tax_rate_id
                if not rate and tax not in seen:
                    seen.add(tax)
                    problems.append(
                        self.env._(
                            "The tax %(tax)s has no Sage tax rate: choose one on the tax.",
                            tax=tax.display_name,
                        )
                    )
                elif rate and (rate.connection_id != connection or not rate.active):
                    if tax not in seen:
                        seen.add(tax)
                        problems.append(
                            self.env._(
                                "The Sage tax rate of the tax %(tax)s is not available in the "
                                "Sage business of this company.",
                                tax=tax.display_name,
                            )
                        )
            elif not self._sage_no_tax_rate(connection) and "no_tax" not in seen:
                seen.add("no_tax")
                problems.append(
                    self.env._(
                        "The line “%(line)s” has no tax and Sage offers no “No Tax” rate.",
                        line=label,
                    )
                )
            if not self._sage_line_ledger(line, connection, ledger_cache):
                problems.append(
                    self.env._(
                        "No Sage ledger for the line “%(line)s”: map its product or income "
                        "account to a Sage ledger, or set a default revenue ledger.",
                        line=label,
                    )
                )
        return problems

    def _sage_format_problems(self, problems, operation="send"):
        if operation == "write_off":
            head = self.env._("Nothing was written off in Sage:")
        elif operation == "allocate":
            head = self.env._("Nothing was allocated in Sage:")
        else:
            head = self.env._("Nothing was sent to Sage:")
        lines = [head]
        for move, messages in problems.items():
            for message in messages:
                lines.append(f"• {move.display_name}: {message}")
        return "\n".join(lines)

    # ------------------------------------------------------------------
    # Mapping helpers (Odoo records -> plain data for sage_api.documents)
    # ------------------------------------------------------------------
    def _sage_product_lines(self):
        return self.invoice_line_ids.filtered(lambda line: line.display_type == "product")

    def _sage_partner_emails(self):
        """Emails to match the customer in Sage: invoice contact, then company."""
        emails = []
        for partner in (self.partner_id, self.commercial_partner_id):
            email = (partner.email or "").strip()
            if email and email.lower() not in [e.lower() for e in emails]:
                emails.append(email)
        return emails

    @api.model
    def _sage_business_currency(self, connection):
        return (
            connection.business_currency or connection.company_id.currency_id.name or ""
        ).upper()

    @api.model
    def _sage_no_tax_rate(self, connection):
        rates = connection.tax_rate_ids.filtered(
            lambda rate: rate.active and rate.sage_id.upper().endswith("_NO_TAX")
        )
        return rates[:1]

    @api.model
    def _sage_line_ledger(self, line, connection, cache=None):
        """Ledger of a line: product mapping, else income-account mapping, else default."""
        cache = {} if cache is None else cache
        if connection.id not in cache:
            mappings = (
                self.env["sage.ledger.mapping"]
                .sudo()
                .search([("connection_id", "=", connection.id)])
            )
            cache[connection.id] = (
                {m.product_id.id: m.ledger_id for m in mappings if m.product_id},
                {m.account_id.id: m.ledger_id for m in mappings if m.account_id},
            )
        by_product, by_account = cache[connection.id]
        for ledger in (
            by_product.get(line.product_id.id),
            by_account.get(line.account_id.id),
            connection.default_ledger_id,
        ):
            if ledger and ledger.active:
                return ledger
        return self.env["sage.ledger.account"]

    def _sage_exchange_rate(self, connection):
        """Units of the document currency per unit of Sage's business currency."""
        business = self._sage_business_currency(connection)
        if self.currency_id.name == business:
            return 1
        if self.company_currency_id.name == business:
            return self.invoice_currency_rate or 1
        business_currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", business)], limit=1)
        )
        if not business_currency:
            return self.invoice_currency_rate or 1
        return self.env["res.currency"]._get_conversion_rate(
            business_currency,
            self.currency_id,
            self.company_id,
            self.invoice_date or fields.Date.context_today(self),
        )

    def _sage_document_data(self, connection, contact_id, ledger_cache):
        """Plain description of this move for `documents.sales_document_payload`."""
        self.ensure_one()
        resource = documents.CREDIT_NOTE if self.move_type == "out_refund" else documents.INVOICE
        customer_reference = self.ref
        origin = self.reversed_entry_id or (
            self.debit_origin_id if "debit_origin_id" in self._fields else False
        )
        if origin and customer_reference and origin.name and origin.name in customer_reference:
            # "Reversal of: INV/..." is Odoo's text, not the customer's reference.
            customer_reference = False
        no_tax = self._sage_no_tax_rate(connection)
        lines = []
        for line in self._sage_product_lines():
            tax = line.tax_ids[:1]
            lines.append(
                {
                    "description": line.name or line.product_id.display_name,
                    "quantity": line.quantity,
                    "price_unit": line.price_unit,
                    "price_subtotal": line.price_subtotal,
                    "price_total": line.price_total,
                    "tax_amount": self.currency_id.round(line.price_total - line.price_subtotal),
                    "price_include": bool(tax.price_include),
                    "ledger_id": self._sage_line_ledger(line, connection, ledger_cache).sage_id,
                    "tax_rate_id": (tax.sage_tax_rate_id if tax else no_tax).sage_id,
                }
            )
        number = documents.document_number(
            self.name, connection.number_prefix, connection.number_suffix
        )
        return {
            "resource": resource,
            "contact_id": contact_id,
            "date": self.invoice_date,
            "due_date": documents.due_date(
                self.invoice_date,
                self.invoice_date_due,
                has_payment_terms=bool(self.invoice_payment_term_id),
                default_due_days=connection.default_due_days,
            ),
            "reference": documents.document_reference(customer_reference, self.name),
            "notes": self.narration,
            "currency": self.currency_id.name,
            "business_currency": self._sage_business_currency(connection),
            "exchange_rate": self._sage_exchange_rate(connection),
            "numbering_mode": connection.numbering_mode,
            "number": number,
            "original_invoice_date": self.reversed_entry_id.invoice_date or None,
            "lines": lines,
        }

    # ------------------------------------------------------------------
    # Locks and commits
    # ------------------------------------------------------------------
    def _sage_lock_for_push(self, skip_locked=False):
        """Lock the rows so that two users or workers never push one document.

        NOWAIT (interactive): raise a clear error when someone else holds a row.
        SKIP LOCKED (batch): return only the moves that could be locked.
        """
        if not self:
            return self
        self.env.flush_all()
        mode = "SKIP LOCKED" if skip_locked else "NOWAIT"
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    f"SELECT id FROM account_move WHERE id IN %s FOR NO KEY UPDATE {mode}",
                    [tuple(self.ids)],
                )
                locked_ids = {row[0] for row in self.env.cr.fetchall()}
        except psycopg2.errors.LockNotAvailable:
            raise UserError(
                self.env._(
                    "These documents are already being sent to Sage by another user; "
                    "try again in a moment."
                )
            ) from None
        self.invalidate_recordset(PUSH_FIELDS)
        return self.browse([move_id for move_id in self.ids if move_id in locked_ids])

    def _sage_commit(self):
        """Commit now, so the idempotency id and state survive a crash during
        the HTTP call. Never under tests (the test transaction is rolled back)."""
        self.env.flush_all()
        if modules.module.current_test or self.env.registry.in_test_mode():
            return
        self.env.cr.commit()  # pylint: disable=invalid-commit

    # ------------------------------------------------------------------
    # Contacts
    # ------------------------------------------------------------------
    def _sage_client_or_raise(self, connection, clients):
        if connection.id not in clients:
            try:
                clients[connection.id] = connection._sage_client()
            except SageReauthorizationRequired:
                raise UserError(
                    self.env._(
                        "The Sage connection of %(company)s has expired: a system "
                        "administrator must reconnect it.",
                        company=connection.company_id.display_name,
                    )
                ) from None
            except SageError as error:
                raise UserError(
                    self.env._("Could not reach Sage: %(error)s", error=error)
                ) from None
        return clients[connection.id]

    def _sage_resolve_contacts(self, clients, all_or_nothing=True):
        """Sage contact id of each move's customer: ({move: contact_id}, problems).

        Link of the partner → exact, case-insensitive email match in Sage →
        a new contact. Several contacts with the email: a problem. All
        searches run before anything is created in Sage; with
        ``all_or_nothing`` any problem means no contact is created at all,
        otherwise the customers without problem are still resolved.
        """
        problems = defaultdict(list)
        resolved = {}
        to_create = {}
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        keys = {}
        for move in self:
            connection = move._sage_connection()
            keys.setdefault((connection, move.commercial_partner_id), []).append(move)
        for (connection, partner), moves in keys.items():
            link = partner._sage_contact_link(connection)
            if link:
                resolved[connection, partner] = link.sage_contact_id
                continue
            client = self._sage_client_or_raise(connection, clients)
            emails = moves[0]._sage_partner_emails()
            matches = []
            try:
                for email in emails:
                    matches = [
                        contact
                        for contact in client.find_contacts_by_email(email)
                        if (contact.get("email") or "").strip().lower() == email.lower()
                    ]
                    if matches:
                        break
            except SageError as error:
                for move in moves:
                    problems[move].append(
                        self.env._("Could not look the customer up in Sage: %(error)s", error=error)
                    )
                continue
            if len(matches) > 1:
                names = ", ".join(
                    f"{c.get('name') or c.get('displayed_as')} [{c.get('id')}]" for c in matches
                )
                for move in moves:
                    problems[move].append(
                        self.env._(
                            "Several Sage contacts use the email %(email)s (%(contacts)s): "
                            "link the customer %(partner)s to the right one (Sage tab of the "
                            "customer).",
                            email=email,
                            contacts=names,
                            partner=partner.display_name,
                        )
                    )
            elif matches:
                to_create[connection, partner] = ("link", matches[0], None)
            else:
                email = (partner.email or "").strip() or emails[0]
                to_create[connection, partner] = ("create", None, email)
        if problems and all_or_nothing:
            return {}, dict(problems)
        for (connection, partner), (what, contact, email) in to_create.items():
            if what == "link":
                partner._sage_link_contact(connection, contact["id"], contact.get("reference"))
                resolved[connection, partner] = contact["id"]
                continue
            client = clients[connection.id]
            try:
                created = self._sage_create_contact(client, connection, partner, email, db_uuid)
            except SageError as error:
                for move in keys[connection, partner]:
                    problems[move].append(
                        self.env._(
                            "Sage refused to create the customer %(partner)s: %(error)s",
                            partner=partner.display_name,
                            error=error,
                        )
                    )
                continue
            partner._sage_link_contact(connection, created["id"], created.get("reference"))
            resolved[connection, partner] = created["id"]
        contacts = {}
        for (connection, partner), moves in keys.items():
            if (connection, partner) in resolved:
                for move in moves:
                    contacts[move] = resolved[connection, partner]
        return contacts, dict(problems)

    @api.model
    def _sage_create_contact(self, client, connection, partner, email, db_uuid):
        """Create the customer in Sage, with a fresh reference if ours is taken."""
        for variant in range(3):
            reference = partner._sage_contact_reference(variant)
            payload = documents.contact_payload(partner._sage_contact_data(email), reference)
            idempotency_id = make_idempotency_id(
                db_uuid, "res.partner", partner.id, "contact", connection.id, variant
            )
            try:
                return client.create_contact(payload, idempotency_id)
            except SageValidationError as error:
                if variant == 2 or not documents.is_duplicate_reference_error(error):
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------
    # Step 1: prepare
    # ------------------------------------------------------------------
    def _sage_prepare_push(self, raise_on_problem=True, clients=None):
        """Check, lock and prepare these moves for Sage; commit; return jobs.

        Returns ``(jobs, problems)``: a list of ``sage_api.push.PreparedPush``
        (one per move that is ready, now in state *sending*) and
        ``{move: [message]}`` for the others. With ``raise_on_problem`` (the
        interactive default) any problem raises one UserError listing them all
        and nothing is sent. ``clients`` (a dict, filled here) maps connection
        ids to the ``SageClient`` to pass to ``send_document``.
        Rights are checked first (AccessError).
        """
        clients = {} if clients is None else clients
        self._sage_check_push_rights()
        problems = self._sage_push_problems()
        if problems and raise_on_problem:
            raise UserError(self._sage_format_problems(problems))
        ready = self.filtered(lambda move: move not in problems)
        locked = ready._sage_lock_for_push(skip_locked=not raise_on_problem)
        for move in ready - locked:
            problems[move] = [self.env._("It is already being sent to Sage by someone else.")]
        # Another transaction may have sent them while we waited: check again.
        late = locked._sage_push_problems()
        if late and raise_on_problem:
            raise UserError(self._sage_format_problems(late))
        problems.update(late)
        ready = locked.filtered(lambda move: move not in late)
        contacts, contact_problems = ready._sage_resolve_contacts(
            clients, all_or_nothing=raise_on_problem
        )
        if contact_problems and raise_on_problem:
            raise UserError(self._sage_format_problems(contact_problems))
        problems.update(contact_problems)
        ready = ready.filtered(lambda move: move in contacts)
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        ledger_cache = {}
        jobs = []
        for move in ready:
            connection = move._sage_connection()
            self._sage_client_or_raise(connection, clients)
            jobs.append(move._sage_build_job(connection, contacts[move], db_uuid, ledger_cache))
        self._sage_commit()
        return jobs, problems

    def _sage_build_job(self, connection, contact_id, db_uuid, ledger_cache):
        self.ensure_one()
        data = self._sage_document_data(connection, contact_id, ledger_cache)
        payload = documents.sales_document_payload(data)
        # An id kept from an earlier attempt may have reached Sage: look first.
        verify_first = bool(self.sage_idempotency_id)
        idempotency_id = self.sage_idempotency_id or make_idempotency_id(
            db_uuid, self._name, self.id, "send", self.sage_push_generation
        )
        allocation = None
        origin = self.reversed_entry_id
        if (
            self.move_type == "out_refund"
            and origin.sage_state == "sent"
            and origin.sage_id
            and origin.sage_connection_id == connection
            and origin.commercial_partner_id == self.commercial_partner_id
        ):
            allocation = AllocationPlan(
                contact_id=contact_id,
                invoice_id=origin.sage_id,
                date=payload["date"],
                idempotency_id=make_idempotency_id(
                    db_uuid, self._name, self.id, "allocation", self.sage_push_generation
                ),
            )
        self._sage_write_sync(
            {
                "sage_state": "sending",
                "sage_sending_since": fields.Datetime.now(),
                "sage_connection_id": connection.id,
                "sage_idempotency_id": idempotency_id,
                "sage_attempts": self.sage_attempts + 1,
            }
        )
        return PreparedPush(
            move_id=self.id,
            operation="send",
            resource=data["resource"],
            payload=payload,
            idempotency_id=idempotency_id,
            contact_id=contact_id,
            date=payload["date"],
            total=documents.money(self.amount_total),
            reference=payload.get("reference"),
            number=payload.get(documents.NUMBER_KEY[data["resource"]]),
            verify_first=verify_first,
            allocation=allocation,
        )

    # ------------------------------------------------------------------
    # Steps 1-3 in a row
    # ------------------------------------------------------------------
    def _sage_push_now(self):
        """Prepare, send and apply, synchronously; returns the PushResults."""
        clients = {}
        jobs, _problems = self._sage_prepare_push(clients=clients)
        results = []
        for job in jobs:
            move = self.browse(job.move_id)
            result = send_document(clients[move.sage_connection_id.id], job)
            move._sage_apply_push_result(result)
            results.append(result)
        return results

    # ------------------------------------------------------------------
    # Step 3: apply
    # ------------------------------------------------------------------
    def _sage_check_not_linked_elsewhere(self, connection, sage_id):
        other = self.search(
            [
                ("sage_connection_id", "=", connection.id),
                ("sage_id", "=", sage_id),
                ("id", "!=", self.id),
            ],
            limit=1,
        )
        if other:
            raise UserError(
                self.env._(
                    "The Sage document %(id)s is already linked to %(move)s.",
                    id=sage_id,
                    move=other.display_name,
                )
            )

    def _sage_apply_push_result(self, result):
        """Write the outcome of ``send_document`` on this move, log it, commit."""
        self.ensure_one()
        if result.operation == "write_off":
            self._sage_apply_write_off_result(result)
        elif result.operation == "allocate":
            self._sage_apply_allocation_result(result)
        else:
            self._sage_apply_send_result(result)
        self._sage_commit()

    def _sage_apply_send_result(self, result):
        if result.sent:
            other = self.search(
                [
                    ("sage_connection_id", "=", self.sage_connection_id.id),
                    ("sage_id", "=", result.sage_id),
                    ("id", "!=", self.id),
                ],
                limit=1,
            )
            if other:
                result.status = "uncertain"
                result.error = self.env._(
                    "The matching Sage document %(number)s is already linked to %(move)s.",
                    number=result.number,
                    move=other.display_name,
                )
            else:
                self._sage_mark_sent(result)
                return
        values = {
            "sage_sending_since": False,
            "sage_last_error": result.error,
        }
        if result.status == "uncertain":
            values.update(
                sage_state="uncertain",
                sage_candidate_id=result.candidates[0]["id"] if result.candidates else False,
                sage_candidates_info=self._sage_candidates_text(result.candidates) or False,
            )
            body = Markup("%s<br/>%s") % (
                self.env._(
                    "Sage may or may not have received this document; a financial manager "
                    "must check it before it is sent again."
                ),
                result.error or "",
            )
            if result.candidates:
                body += Markup("<br/>%s %s") % (
                    self.env._("Possible matches:"),
                    values["sage_candidates_info"],
                )
        else:
            values["sage_state"] = "conflict" if result.status == "conflict" else "error"
            if result.status == "conflict":
                values["sage_last_error"] = self.env._(
                    "Sage already has a document numbered %(number)s. Change the number prefix "
                    "or suffix of the Sage connection, or let Sage number the documents. "
                    "(%(error)s)",
                    number=documents.document_number(
                        self.name,
                        self.sage_connection_id.number_prefix,
                        self.sage_connection_id.number_suffix,
                    ),
                    error=result.error,
                )
            if result.definitive:
                # Sage refused: nothing was created, the next attempt is a new request.
                values.update(
                    sage_idempotency_id=False, sage_push_generation=self.sage_push_generation + 1
                )
            body = Markup("%s<br/>%s") % (
                self.env._("Sending to Sage failed."),
                values["sage_last_error"] or "",
            )
        self._sage_write_sync(values)
        self._message_log(body=body)

    def _sage_mark_sent(self, result):
        warnings = []
        difference = documents.total_difference(result.total, self.amount_total)
        if difference is not None:
            warnings.append(
                self.env._(
                    "Sage's total (%(sage)s) differs from Odoo's (%(odoo)s) by %(difference)s.",
                    sage=result.total,
                    odoo=self.amount_total,
                    difference=difference,
                )
            )
        if result.allocation_error:
            warnings.append(
                self.env._(
                    "The credit note could not be allocated to %(invoice)s in Sage: %(error)s",
                    invoice=self.reversed_entry_id.display_name,
                    error=result.allocation_error,
                )
            )
        elif result.allocation_skipped:
            warnings.append(
                self.env._(
                    "The credit note was not allocated to %(invoice)s: %(reason)s.",
                    invoice=self.reversed_entry_id.display_name,
                    reason=result.allocation_skipped,
                )
            )
        elif self.move_type == "out_refund" and self.reversed_entry_id and not result.allocation_id:
            warnings.append(
                self.env._(
                    "The credit note was not allocated: the invoice it reverses (%(invoice)s) "
                    "is not in Sage.",
                    invoice=self.reversed_entry_id.display_name,
                )
            )
        payment_status = SAGE_STATUS_TO_PAYMENT_STATUS.get(result.status_id, "unpaid")
        outstanding = result.outstanding if result.outstanding is not None else result.total
        if result.allocation_amount and outstanding is not None:
            outstanding = max(documents.money(outstanding) - result.allocation_amount, 0)
            payment_status = "paid" if outstanding == 0 else "part_paid"
        self._sage_write_sync(
            {
                "sage_state": "sent",
                "sage_id": result.sage_id,
                "sage_number": result.number,
                "sage_sent_date": fields.Datetime.now(),
                "sage_sending_since": False,
                "sage_last_error": "\n".join(warnings) or False,
                "sage_candidate_id": False,
                "sage_candidates_info": False,
                "sage_total_amount": result.total,
                "sage_payment_status": payment_status,
                "sage_outstanding_amount": outstanding,
                "sage_allocation_id": result.allocation_id or False,
            }
        )
        how = {
            "found": self.env._("(found in Sage after a lost answer)"),
            "replayed": self.env._("(confirmed by Sage after a lost answer)"),
        }.get(result.how, "")
        body = Markup("%s <b>%s</b> %s") % (self.env._("Sent to Sage as"), result.number, how)
        if result.allocation_id:
            body += Markup("<br/>%s") % self.env._(
                "Allocated %(amount)s to %(invoice)s in Sage.",
                amount=result.allocation_amount,
                invoice=self.reversed_entry_id.sage_number or self.reversed_entry_id.display_name,
            )
        for warning in warnings:
            body += Markup("<br/>⚠ %s") % warning
        self._message_log(body=body)
        if result.allocation_id and self.reversed_entry_id:
            self.reversed_entry_id._message_log(
                body=self.env._(
                    "Credit note %(number)s allocated to this invoice in Sage (%(amount)s).",
                    number=result.number,
                    amount=result.allocation_amount,
                )
            )
        self._sage_after_sent()

    def _sage_apply_allocation_result(self, result):
        invoice = self.reversed_entry_id
        if result.allocation_id:
            outstanding = max(
                documents.money(self.sage_outstanding_amount) - result.allocation_amount, 0
            )
            self._sage_write_sync(
                {
                    "sage_allocation_id": result.allocation_id,
                    "sage_last_error": False,
                    "sage_outstanding_amount": outstanding,
                    "sage_payment_status": "paid" if outstanding == 0 else "part_paid",
                }
            )
            message = self.env._(
                "Allocated %(amount)s to %(invoice)s in Sage.",
                amount=result.allocation_amount,
                invoice=invoice.sage_number or invoice.display_name,
            )
            invoice._message_log(
                body=self.env._(
                    "Credit note %(number)s allocated to this invoice in Sage (%(amount)s).",
                    number=self.sage_number,
                    amount=result.allocation_amount,
                )
            )
        else:
            message = self.env._(
                "The credit note could not be allocated to %(invoice)s in Sage: %(error)s",
                invoice=invoice.display_name,
                error=result.allocation_error or result.allocation_skipped or result.error,
            )
            self._sage_write_sync({"sage_last_error": message})
            # Shown as a failure in the notification.
            result.allocation_error = result.allocation_error or message
        self._message_log(body=message)

    @api.model
    def _sage_candidates_text(self, candidates):
        return "; ".join(
            f"{c.get('number') or '?'} [{c.get('id')}] {c.get('date') or ''} "
            f"{c.get('total') if c.get('total') is not None else ''}".strip()
            for c in candidates
        )

    # ------------------------------------------------------------------
    # Write-off
    # ------------------------------------------------------------------
    def _sage_write_off_problems(self):
        problems = defaultdict(list)
        for move in self:
            add = problems[move].append
            connection = move._sage_connection()
            connection_problem = move._sage_connection_problem(connection)
            if connection_problem:
                add(connection_problem)
            if move.move_type != "out_invoice" or move.state != "posted":
                add(self.env._("Only posted customer invoices can be written off."))
                continue
            if move.sage_state != "sent" or not move.sage_id:
                add(self.env._("It is not in Sage yet: send it to Sage before writing it off."))
                continue
            if move.sage_write_off_state == "done" or move.sage_payment_status in (
                "written_off",
                "paid_written_off",
            ):
                add(self.env._("It is already written off in Sage."))
                continue
            if move._sage_is_being_sent("sage_write_off_state", "sage_write_off_since"):
                add(self.env._("It is already being written off in Sage; wait a moment."))
                continue
            if move.sage_payment_status == "void":
                add(self.env._("It is void in Sage: there is nothing to write off."))
                continue
            if move.sage_payment_status == "paid" or move.payment_state in (
                "paid",
                "in_payment",
                "reversed",
            ):
                add(self.env._("It is paid: there is nothing to write off."))
                continue
            if connection_problem:
                continue
            if not connection.bad_debt_ledger_id or not connection.bad_debt_ledger_id.active:
                add(self.env._("Set the Bad Debts ledger of the Sage connection first."))
            if not self._sage_no_tax_rate(connection):
                add(self.env._("Sage offers no “No Tax” rate for the write-off credit note."))
        return {move: messages for move, messages in problems.items() if messages}

    def _sage_prepare_write_off(self, clients):
        """Build the bad-debt credit note of this invoice's open balance in Sage."""
        self.ensure_one()
        connection = self.sage_connection_id or self._sage_connection()
        client = self._sage_client_or_raise(connection, clients)
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        generation = self.sage_write_off_generation
        allocation_id = make_idempotency_id(
            db_uuid, self._name, self.id, "write_off_allocation", generation
        )
        if self.sage_write_off_id:
            # The credit note exists; only its allocation failed earlier.
            contact_id = self.commercial_partner_id._sage_contact_link(connection).sage_contact_id
            job = PreparedPush(
                move_id=self.id,
                operation="write_off",
                resource=documents.CREDIT_NOTE,
                payload={},
                idempotency_id=self.sage_write_off_idempotency_id or "",
                contact_id=contact_id,
                date=fields.Date.to_string(fields.Date.context_today(self)),
                total=documents.money(self.sage_write_off_amount),
                existing_id=self.sage_write_off_id,
                existing_number=self.sage_write_off_number,
                allocation=AllocationPlan(
                    contact_id=contact_id,
                    invoice_id=self.sage_id,
                    date=fields.Date.to_string(fields.Date.context_today(self)),
                    idempotency_id=allocation_id,
                ),
            )
        else:
            try:
                invoice = client.get_sales_invoice(self.sage_id)
            except SageError as error:
                raise UserError(
                    self.env._(
                        "Could not read %(move)s in Sage: %(error)s",
                        move=self.display_name,
                        error=error,
                    )
                ) from None
            status = (invoice.get("status") or {}).get("id")
            outstanding = documents.money(invoice.get("outstanding_amount"))
            if status == "VOID":
                raise UserError(
                    self.env._(
                        "%(move)s is void in Sage: there is nothing to write off.",
                        move=self.display_name,
                    )
                )
            if outstanding <= 0:
                raise UserError(
                    self.env._(
                        "%(move)s is paid in Sage: there is nothing to write off.",
                        move=self.display_name,
                    )
                )
            contact_id = invoice["contact"]["id"]
            today = fields.Date.to_string(fields.Date.context_today(self))
            number = self.sage_number or invoice.get("invoice_number") or self.name
            payload = documents.write_off_payload(
                contact_id=contact_id,
                amount=outstanding,
                date=today,
                ledger_id=connection.bad_debt_ledger_id.sage_id,
                tax_rate_id=self._sage_no_tax_rate(connection).sage_id,
                invoice_number=number,
                currency=(invoice.get("currency") or {}).get("id"),
                exchange_rate=invoice.get("exchange_rate") or 1,
                business_currency=self._sage_business_currency(connection),
            )
            verify_first = bool(self.sage_write_off_idempotency_id)
            idempotency_id = self.sage_write_off_idempotency_id or make_idempotency_id(
                db_uuid, self._name, self.id, "write_off", generation
            )
            job = PreparedPush(
                move_id=self.id,
                operation="write_off",
                resource=documents.CREDIT_NOTE,
                payload=payload,
                idempotency_id=idempotency_id,
                contact_id=contact_id,
                date=today,
                total=outstanding,
                reference=payload.get("reference"),
                verify_first=verify_first,
                allocation=AllocationPlan(
                    contact_id=contact_id,
                    invoice_id=self.sage_id,
                    date=today,
                    idempotency_id=allocation_id,
                    amount=outstanding,
                ),
            )
            self._sage_write_sync({"sage_write_off_idempotency_id": idempotency_id})
        self._sage_write_sync(
            {
                "sage_write_off_state": "sending",
                "sage_write_off_since": fields.Datetime.now(),
            }
        )
        return job

    def _sage_apply_write_off_result(self, result):
        values = {"sage_write_off_since": False}
        if result.sent:
            values.update(
                sage_write_off_id=result.sage_id,
                sage_write_off_number=result.number,
                sage_write_off_amount=result.total,
            )
            if result.allocation_id:
                values.update(
                    sage_write_off_state="done",
                    sage_payment_status="written_off",
                    sage_outstanding_amount=0,
                    sage_last_error=False,
                )
                body = self.env._(
                    "Written off in Sage: credit note %(number)s of %(amount)s on the Bad Debts "
                    "ledger, allocated to this invoice.",
                    number=result.number,
                    amount=result.allocation_amount,
                )
            else:
                reason = result.allocation_error or result.allocation_skipped or ""
                values.update(
                    sage_write_off_state="unallocated",
                    sage_last_error=self.env._(
                        "The write-off credit note %(number)s is in Sage but could not be "
                        "allocated to this invoice: %(reason)s",
                        number=result.number,
                        reason=reason,
                    ),
                )
                body = values["sage_last_error"]
        elif result.status == "uncertain":
            values.update(
                sage_write_off_state="uncertain",
                sage_last_error=result.error,
                sage_candidates_info=self._sage_candidates_text(result.candidates) or False,
            )
            body = self.env._(
                "The write-off may or may not have reached Sage: %(error)s", error=result.error
            )
        else:
            values.update(sage_write_off_state="error", sage_last_error=result.error)
            if result.definitive:
                values.update(
                    sage_write_off_idempotency_id=False,
                    sage_write_off_generation=self.sage_write_off_generation + 1,
                )
            body = self.env._("The write-off in Sage failed: %(error)s", error=result.error)
        self._sage_write_sync(values)
        self._message_log(body=body)

    # ------------------------------------------------------------------
    # Feedback
    # ------------------------------------------------------------------
    def _sage_notification(self, results):
        sent = [r for r in results if r.sent and not r.allocation_error]
        failed = [r for r in results if not r.sent or r.allocation_error]
        moves = {move.id: move for move in self}
        if not failed:
            notification_type = "success"
            message = self.env._(
                "%(count)s document(s) sent to Sage: %(numbers)s",
                count=len(sent),
                numbers=", ".join(r.number or "" for r in sent),
            )
        else:
            notification_type = "warning" if sent else "danger"
            details = "\n".join(
                f"{moves[r.move_id].display_name if r.move_id in moves else r.move_id}: "
                f"{r.allocation_error or r.error}"
                for r in failed
            )
            message = self.env._(
                "%(sent)s sent, %(failed)s not sent or incomplete:\n%(details)s",
                sent=len(sent),
                failed=len(failed),
                details=details,
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": notification_type,
                "title": self.env._("Sage"),
                "message": message,
                "sticky": bool(failed),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }
