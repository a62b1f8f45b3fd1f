"""Push all to Sage: choose the documents by payment type, push them, or remove drafts.

Opened from the "Documents to push" screen (all the company's unsent
documents) or from a list selection. It previews the unsent documents (posted
customer invoices and credit notes not in Sage) grouped by payment type, with
counts and totals, so that billing can be checked and pushed one type at a
time. Push Now queues a background batch (``sage.push.batch``); Remove
Invoices deletes the never-pushed drafts of the same choice. Financial
managers only, checked in every method (not only by hiding the menu).
"""

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression


class SagePushWizard(models.TransientModel):
    _name = "sage.push.wizard"
    _description = "Push all to Sage"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    scope = fields.Selection(
        [("all", "All documents of the company"), ("selection", "Selected documents")],
        required=True,
        default="all",
        readonly=True,
    )
    move_ids = fields.Many2many(
        "account.move",
        "sage_push_wizard_move_rel",
        "wizard_id",
        "move_id",
        string="Selected documents",
        readonly=True,
        check_company=True,
    )
    mode = fields.Selection(
        [("all", "All payment types"), ("types", "Chosen payment types")],
        string="Push",
        required=True,
        default="all",
    )
    type_line_ids = fields.One2many("sage.push.wizard.type", "wizard_id", "Payment types")
    push_count = fields.Integer("Documents to push", compute="_compute_totals")
    push_amount = fields.Monetary("Total to push", compute="_compute_totals")
    draft_count = fields.Integer("Drafts to remove", compute="_compute_totals")

    @api.depends("mode", "type_line_ids.selected")
    def _compute_totals(self):
        for wizard in self:
            lines = wizard._sage_chosen_type_lines()
            wizard.push_count = sum(lines.mapped("document_count"))
            wizard.push_amount = sum(lines.mapped("amount_total"))
            wizard.draft_count = sum(lines.mapped("draft_count"))

    # ------------------------------------------------------------------
    # Defaults: the preview
    # ------------------------------------------------------------------
    @api.model
    def default_get(self, fields_list):
        self.env["account.move"]._sage_check_push_all_rights()
        values = super().default_get(fields_list)
        if "type_line_ids" in fields_list and not values.get("type_line_ids"):
            company = self.env["res.company"].browse(values.get("company_id")) or self.env.company
            move_ids = self._sage_ids_from_commands(values.get("move_ids"))
            values["type_line_ids"] = [
                fields.Command.create(line)
                for line in self._sage_preview(company, values.get("scope") or "all", move_ids)
            ]
        return values

    @api.model
    def _sage_ids_from_commands(self, commands):
        ids = []
        for command in commands or []:
            if isinstance(command, (list, tuple)):
                if command[0] == fields.Command.SET:
                    ids = list(command[2])
                elif command[0] == fields.Command.LINK:
                    ids.append(command[1])
            elif isinstance(command, int):
                ids.append(command)
        return ids

    @api.model
    def _sage_scope_domain(self, company, scope, move_ids):
        domain = [("company_id", "=", company.id)]
        if scope == "selection":
            domain.append(("id", "in", move_ids))
        return domain

    @api.model
    def _sage_preview(self, company, scope, move_ids):
        """Values of one line per payment type: unsent documents, their total, drafts."""
        Move = self.env["account.move"]
        scope_domain = self._sage_scope_domain(company, scope, move_ids)
        groups = {}
        for domain, count_field in (
            (Move._sage_unsent_domain(), "document_count"),
            (Move._sage_removable_draft_domain(), "draft_count"),
        ):
            for method_line, terms, count, amount in Move._read_group(
                expression.AND([domain, scope_domain]),
                ["preferred_payment_method_line_id", "invoice_payment_term_id"],
                ["__count", "amount_total_signed:sum"],
            ):
                key = Move._sage_payment_type_key_of(method_line.id, terms.id)
                group = groups.setdefault(
                    key,
                    {
                        "key": key,
                        "name": Move._sage_payment_type_label(key),
                        "document_count": 0,
                        "amount_total": 0.0,
                        "draft_count": 0,
                    },
                )
                group[count_field] += count
                if count_field == "document_count":
                    group["amount_total"] += amount or 0.0
        return sorted(groups.values(), key=lambda group: (-group["document_count"], group["name"]))

    # ------------------------------------------------------------------
    # The choice
    # ------------------------------------------------------------------
    def _sage_chosen_type_lines(self):
        self.ensure_one()
        if self.mode == "all":
            return self.type_line_ids
        return self.type_line_ids.filtered("selected")

    def _sage_chosen_domain(self):
        """Scope of the wizard restricted to the chosen payment types."""
        self.ensure_one()
        Move = self.env["account.move"]
        domain = self._sage_scope_domain(self.company_id, self.scope, self.move_ids.ids)
        if self.mode == "types":
            keys = self._sage_chosen_type_lines().mapped("key")
            if not keys:
                raise UserError(
                    self.env._("Choose at least one payment type, or push all payment types.")
                )
            domain = expression.AND([domain, Move._sage_payment_type_domain(keys)])
        return domain

    def _sage_chosen_label(self):
        if self.mode == "all":
            return self.env._("All")
        return ", ".join(self._sage_chosen_type_lines().mapped("name"))

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------
    def action_push_now(self):
        """Queue the chosen unsent documents in a background batch."""
        self.ensure_one()
        Move = self.env["account.move"]
        Move._sage_check_push_all_rights()
        self.check_access("write")
        moves = Move.search(
            expression.AND([Move._sage_unsent_domain(), self._sage_chosen_domain()]), order="id"
        )
        if not moves:
            raise UserError(
                self.env._(
                    "Nothing to push: no posted invoice or credit note of the chosen payment "
                    "types is waiting to be sent to Sage."
                )
            )
        connection = self.env["sage.connection"]._for_company(
            self.company_id, raise_if_missing=False
        )
        problem = moves[:1]._sage_connection_problem(connection)
        if problem:
            raise UserError(problem)
        batch = self.env["sage.push.batch"]._sage_queue(moves, self._sage_chosen_label())
        batch_action = {
            "type": "ir.actions.act_window",
            "name": batch.display_name,
            "res_model": "sage.push.batch",
            "res_id": batch.id,
            "views": [(False, "form")],
            "target": "current",
        }
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": self.env._("Push all to Sage"),
                "message": self.env._(
                    "%(count)s invoices are being pushed to Sage. Follow the progress in %%s; "
                    "you will be notified when the push is complete.",
                    count=len(moves),
                ),
                "links": [{"label": batch.display_name, "url": batch._sage_url()}],
                "next": batch_action,
            },
        }

    def action_remove_drafts(self):
        """Delete the draft documents of the choice that never reached Sage."""
        self.ensure_one()
        Move = self.env["account.move"]
        Move._sage_check_push_all_rights()
        self.check_access("write")
        chosen = self._sage_chosen_domain()
        drafts = Move.search(expression.AND([Move._sage_removable_draft_domain(), chosen]))
        kept_count = Move.search_count(
            expression.AND(
                [
                    [("move_type", "in", ("out_invoice", "out_refund"))],
                    chosen,
                    [("id", "not in", drafts.ids)],
                ]
            )
        )
        removed, refused = 0, []
        # Last numbers first: Odoo only lets a numbered draft go when it ends its sequence.
        for draft in drafts.sorted(
            lambda move: (move.sequence_prefix or "", move.sequence_number), reverse=True
        ):
            name = draft.display_name
            try:
                with self.env.cr.savepoint():
                    draft.unlink()
                removed += 1
            except UserError as error:
                refused.append(f"{name}: {error.args[0] if error.args else error}")
        message = self.env._(
            "%(removed)s draft invoice(s) removed; %(kept)s kept (posted, cancelled or already "
            "in Sage).",
            removed=removed,
            kept=kept_count + len(refused),
        )
        if refused:
            message += "\n" + self.env._("Not removed:") + "\n" + "\n".join(refused)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if not refused else "warning",
                "title": self.env._("Remove Invoices"),
                "message": message,
                "sticky": bool(refused),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }


class SagePushWizardType(models.TransientModel):
    _name = "sage.push.wizard.type"
    _description = "Payment type in the Push all to Sage wizard"
    _order = "document_count desc, name"

    wizard_id = fields.Many2one("sage.push.wizard", required=True, ondelete="cascade")
    currency_id = fields.Many2one(related="wizard_id.currency_id")
    key = fields.Char(required=True)
    name = fields.Char("Payment type", readonly=True)
    selected = fields.Boolean("Push")
    document_count = fields.Integer("Documents", readonly=True)
    amount_total = fields.Monetary("Total", readonly=True, currency_field="currency_id")
    draft_count = fields.Integer("Drafts", readonly=True)
