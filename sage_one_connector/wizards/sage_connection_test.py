import requests

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..sage_api import connection_rules, make_idempotency_id
from ..sage_api.exceptions import SageError, SageNotFoundError

OPEN_INVOICE_SAGE_STATES = ("not_sent", "queued", "error")
TEST_CONTACT_NAME = "Odoo connection test"
TEST_VOID_REASON = "Odoo connection test"


class _ResponseRecorder:
    """Session factory that keeps the headers of the last response (X-Business)."""

    def __init__(self):
        self.last_headers = {}

    def session(self):
        session = requests.Session()
        session.hooks["response"].append(self._remember)
        return session

    def _remember(self, response, *args, **kwargs):
        self.last_headers = response.headers
        return response


class SageConnectionTest(models.TransientModel):
    """Test connection: read-only checks, each with its result and reason."""

    _name = "sage.connection.test"
    _description = "Test the Sage connection"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", readonly=True
    )
    include_test_invoice = fields.Boolean(
        "Also create and void a test invoice",
        help="Creates a test customer in Sage if needed, then an invoice of 1.00 on the "
        "default revenue ledger, and voids it at once. It stays visible in Sage as void.",
    )
    line_ids = fields.One2many("sage.connection.test.line", "test_id", readonly=True)
    has_run = fields.Boolean(readonly=True)
    all_passed = fields.Boolean(compute="_compute_all_passed")

    @api.depends("line_ids.passed")
    def _compute_all_passed(self):
        for test in self:
            test.all_passed = bool(test.line_ids) and all(test.line_ids.mapped("passed"))

    @api.model
    def _sage_open_for(self, connection):
        connection._sage_check_manager()
        connection.check_access("read")
        test = self.create({"connection_id": connection.id})
        return test._sage_reopen()

    def _sage_reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Test the Sage connection"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
        }

    def action_sage_run(self):
        """Button: run every check and show the results."""
        self.ensure_one()
        self.connection_id._sage_check_manager()
        self.connection_id.check_access("read")
        results = self._sage_run_checks()
        self.line_ids.unlink()
        self.write(
            {
                "has_run": True,
                "line_ids": [
                    fields.Command.create(dict(result, sequence=index))
                    for index, result in enumerate(results)
                ],
            }
        )
        return self._sage_reopen()

    # ------------------------------------------------------------------
    # Checks
    # ------------------------------------------------------------------
    def _sage_run_checks(self):
        """Run the checks; returns a list of {name, passed, detail}."""
        connection = self.connection_id.sudo()
        results = []

        def add(name, passed, detail):
            results.append({"name": name, "passed": passed, "detail": detail})

        recorder = _ResponseRecorder()
        try:
            token = connection._sage_access_token()
            client = connection._sage_build_client(token, session_factory=recorder.session)
            user = client.get_user() or {}
        except (UserError, SageError) as error:
            add(self.env._("Access token"), False, self._sage_reason(error))
            add(
                self.env._("Other checks"),
                False,
                self.env._("Skipped: Sage does not accept the connection's token."),
            )
            return results
        add(
            self.env._("Access token"),
            True,
            self.env._(
                "Sage accepts the token of %(user)s.",
                user=user.get("displayed_as") or user.get("email") or user.get("id") or "?",
            ),
        )
        results.append(self._sage_check_business(client, recorder))
        results.append(self._sage_check_subscription(client))
        results.append(self._sage_check_taxes())
        results.append(self._sage_check_default_ledger(client))
        if self.include_test_invoice:
            results.append(self._sage_check_test_invoice(client))
        return results

    def _sage_reason(self, error):
        if isinstance(error, UserError):
            return error.args[0]
        return str(error)

    def _sage_check_business(self, client, recorder):
        name = self.env._("Business reachable")
        business_id = self.connection_id.business_id
        try:
            client.get_financial_settings()
        except SageError as error:
            return {"name": name, "passed": False, "detail": self._sage_reason(error)}
        echoed = recorder.last_headers.get("X-Business")
        if echoed != business_id:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._(
                    "Sage answered for business %(echoed)s instead of %(expected)s.",
                    echoed=echoed or self.env._("(none)"),
                    expected=business_id,
                ),
            }
        return {
            "name": name,
            "passed": True,
            "detail": self.env._(
                "%(business)s answers, and Sage confirms the business (X-Business).",
                business=self.connection_id.business_name or business_id,
            ),
        }

    def _sage_check_subscription(self, client):
        name = self.env._("Subscription active")
        try:
            business = client.get_business(self.connection_id.business_id) or {}
        except SageError as error:
            return {"name": name, "passed": False, "detail": self._sage_reason(error)}
        active = connection_rules.active_subscriptions(business)
        if not active:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._("The business has no active Sage subscription."),
            }
        return {"name": name, "passed": True, "detail": ", ".join(active)}

    def _sage_open_invoice_taxes(self):
        """Taxes on lines of posted customer documents not yet sent to Sage."""
        groups = (
            self.env["account.move.line"]
            .sudo()
            ._read_group(
                [
                    ("company_id", "=", self.connection_id.company_id.id),
                    ("parent_state", "=", "posted"),
                    ("move_id.move_type", "in", ("out_invoice", "out_refund")),
                    ("move_id.sage_state", "in", OPEN_INVOICE_SAGE_STATES),
                    ("tax_ids", "!=", False),
                ],
                ["tax_ids"],
            )
        )
        return self.env["account.tax"].sudo().union(*(tax for (tax,) in groups))

    def _sage_check_taxes(self):
        name = self.env._("Taxes mapped")
        connection = self.connection_id
        unmapped = self._sage_open_invoice_taxes().filtered(
            lambda tax: (
                not tax.sage_tax_rate_id
                or not tax.sage_tax_rate_id.active
                or tax.sage_tax_rate_id.connection_id != connection
            )
        )
        if unmapped:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._(
                    "Open invoices use taxes without a Sage tax rate: %(taxes)s. "
                    "Map them in Tax mapping.",
                    taxes=", ".join(unmapped.mapped("name")),
                ),
            }
        return {
            "name": name,
            "passed": True,
            "detail": self.env._("Every tax of the open invoices has a Sage tax rate."),
        }

    def _sage_check_default_ledger(self, client):
        name = self.env._("Default revenue ledger")
        ledger = self.connection_id.default_ledger_id
        if not ledger:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._("No default revenue ledger is set in the posting rules."),
            }
        try:
            visible = {item["id"] for item in client.list_ledger_accounts(visible_in="sales")}
        except SageError as error:
            return {"name": name, "passed": False, "detail": self._sage_reason(error)}
        if ledger.sage_id not in visible:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._(
                    "The ledger %(ledger)s is no longer visible in sales in Sage.",
                    ledger=ledger.display_name,
                ),
            }
        return {
            "name": name,
            "passed": True,
            "detail": self.env._("%(ledger)s is visible in sales.", ledger=ledger.display_name),
        }

    def _sage_check_test_invoice(self, client):
        name = self.env._("Test invoice created and voided")
        connection = self.connection_id.sudo()
        if not connection.default_ledger_id:
            return {
                "name": name,
                "passed": False,
                "detail": self.env._("Skipped: no default revenue ledger."),
            }
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        try:
            contact_id = self._sage_test_contact(client, db_uuid)
            rate = self._sage_test_tax_rate()
            line = {
                "description": self.env._("Odoo connection test (voided at once)"),
                "ledger_account_id": connection.default_ledger_id.sage_id,
                "quantity": 1,
                "unit_price": "1.00",
            }
            if rate:
                line["tax_rate_id"] = rate.sage_id
            invoice = client.create_sales_invoice(
                {
                    "contact_id": contact_id,
                    "date": fields.Date.context_today(self).isoformat(),
                    "reference": "ODOO TEST",
                    "invoice_lines": [line],
                },
                idempotency_id=make_idempotency_id(
                    db_uuid, self._name, self.id, fields.Datetime.now().isoformat()
                ),
            )
            client.void_sales_invoice(invoice["id"], TEST_VOID_REASON)
        except SageError as error:
            return {"name": name, "passed": False, "detail": self._sage_reason(error)}
        return {
            "name": name,
            "passed": True,
            "detail": self.env._(
                "Sage created %(number)s and voided it.",
                number=invoice.get("invoice_number") or invoice.get("displayed_as") or "?",
            ),
        }

    def _sage_test_contact(self, client, db_uuid):
        """The Sage customer of test invoices, created once per business."""
        connection = self.connection_id.sudo()
        if connection.test_contact_id and self._sage_contact_exists(
            client, connection.test_contact_id
        ):
            return connection.test_contact_id
        contact = client.create_contact(
            {"name": TEST_CONTACT_NAME, "contact_type_ids": ["CUSTOMER"]},
            idempotency_id=make_idempotency_id(
                db_uuid, "sage.connection.test-contact", connection.id, connection.business_id
            ),
        )
        connection.test_contact_id = contact["id"]
        return contact["id"]

    @staticmethod
    def _sage_contact_exists(client, contact_id):
        try:
            client.get_contact(contact_id)
        except SageNotFoundError:
            return False  # deleted in Sage: a new one is created
        return True

    def _sage_test_tax_rate(self):
        """A zero rate keeps the test invoice free of tax, where the business has one."""
        rates = self.connection_id.tax_rate_ids
        zero = rates.filtered(lambda rate: not rate.percentage)
        preferred = zero.filtered(lambda rate: rate.sage_id.endswith("_ZERO"))
        return (preferred or zero or rates)[:1]


class SageConnectionTestLine(models.TransientModel):
    _name = "sage.connection.test.line"
    _description = "Result of one Sage connection check"
    _order = "sequence, id"

    test_id = fields.Many2one("sage.connection.test", required=True, ondelete="cascade")
    sequence = fields.Integer()
    name = fields.Char("Check", required=True)
    passed = fields.Boolean()
    result = fields.Char(compute="_compute_result")
    detail = fields.Char()

    @api.depends("passed")
    def _compute_result(self):
        for line in self:
            line.result = "✓" if line.passed else "✗"
