import logging
from datetime import datetime, timezone

import psycopg2

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..sage_api import SageClient, SageOAuth, mapping
from ..sage_api.exceptions import SageError, SageReauthorizationRequired

_logger = logging.getLogger(__name__)

SAGE_API_URL = "https://api.accounting.sage.com/v3.1"
SAGE_AUTHORIZE_URL = "https://www.sageone.com/oauth2/auth/central"
SAGE_TOKEN_URL = "https://oauth.accounting.sage.com/token"
SAGE_REVOKE_URL = "https://oauth.accounting.sage.com/revoke"
SAGE_APP_URL = "https://accounts-extra.accounting.sage.com"

# Refresh a little before Sage says the access token expires, so that a call
# started just before expiry does not bounce with a 401.
ACCESS_TOKEN_MARGIN_SECONDS = 30
# How long a second worker waits for the row lock held by the refreshing one.
REFRESH_LOCK_TIMEOUT_MS = 15000

TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "access_token_expires_at",
    "refresh_token_expires_at",
)


class SageConnection(models.Model):
    """The link between one Odoo company and one Sage business."""

    _name = "sage.connection"
    _description = "Sage Business Cloud connection"
    _inherit = ["mail.thread"]
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        ondelete="cascade",
        index=True,
    )
    active = fields.Boolean(default=True)
    state = fields.Selection(
        [
            ("not_connected", "Not connected"),
            ("connected", "Connected"),
            ("needs_reconnect", "Needs reconnect"),
        ],
        default="not_connected",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    # Endpoints are settings so the addon runs unchanged against real Sage and
    # against the project's sandbox.
    api_url = fields.Char("API URL", required=True, default=SAGE_API_URL)
    authorize_url = fields.Char("Authorize URL", required=True, default=SAGE_AUTHORIZE_URL)
    token_url = fields.Char("Token URL", required=True, default=SAGE_TOKEN_URL)
    revoke_url = fields.Char("Revoke URL", required=True, default=SAGE_REVOKE_URL)
    app_url = fields.Char(
        "Sage web app URL",
        default=SAGE_APP_URL,
        help="Base of the links to documents in Sage's web application.",
    )
    country = fields.Selection(
        [("gb", "United Kingdom"), ("ie", "Ireland"), ("ca", "Canada")],
        default="gb",
        help="Sends the user straight to the authorization server of this region.",
    )
    client_id = fields.Char("Client ID", groups="base.group_system", copy=False)
    client_secret = fields.Char("Client secret", groups="base.group_system", copy=False)
    access_token = fields.Char(groups="base.group_system", copy=False)
    refresh_token = fields.Char(groups="base.group_system", copy=False)
    access_token_expires_at = fields.Datetime(groups="base.group_system", copy=False)
    refresh_token_expires_at = fields.Datetime(
        "Connection expires", groups="base.group_system", copy=False
    )
    business_id = fields.Char("Sage business ID", readonly=True, copy=False, index=True)
    business_name = fields.Char("Sage business", readonly=True, copy=False)
    business_currency = fields.Char(readonly=True, copy=False)
    last_reference_sync = fields.Datetime(readonly=True, copy=False)

    # Posting rules
    default_ledger_id = fields.Many2one(
        "sage.ledger.account",
        "Default revenue ledger",
        domain="[('connection_id', '=', id)]",
        help="Ledger used for invoice lines that no override maps.",
    )
    purchase_ledger_id = fields.Many2one(
        "sage.ledger.account",
        "Default purchase ledger",
        domain="[('connection_id', '=', id)]",
        help="Purchase ledger of products and services created in Sage.",
    )
    bad_debt_ledger_id = fields.Many2one(
        "sage.ledger.account",
        "Bad debts ledger",
        domain="[('connection_id', '=', id)]",
        help="Ledger of the credit notes that write invoices off (nominal 8100 in the UK chart).",
    )
    default_due_days = fields.Integer(
        default=30, help="Due date of invoices that have no payment terms."
    )
    numbering_mode = fields.Selection(
        [
            ("sage", "Sage numbers the document; Odoo's number goes in the reference"),
            ("odoo", "Send Odoo's number as the Sage number"),
        ],
        default="sage",
        required=True,
    )
    number_prefix = fields.Char(help="Added before Odoo's number when Odoo numbers the document.")
    number_suffix = fields.Char(help="Added after Odoo's number when Odoo numbers the document.")
    max_concurrency = fields.Integer(
        "Concurrent requests",
        default=8,
        help="How many requests a batch push sends to Sage at the same time.",
    )
    ledger_account_ids = fields.One2many("sage.ledger.account", "connection_id")
    tax_rate_ids = fields.One2many("sage.tax.rate", "connection_id")
    currency_ids = fields.One2many("sage.currency", "connection_id")

    _sql_constraints = [
        (
            "company_uniq",
            "UNIQUE(company_id)",
            "A company can be connected to one Sage business only.",
        ),
        (
            "max_concurrency_positive",
            "CHECK(max_concurrency BETWEEN 1 AND 64)",
            "Concurrent requests must be between 1 and 64.",
        ),
        (
            "default_due_days_positive",
            "CHECK(default_due_days >= 0)",
            "Default due days cannot be negative.",
        ),
    ]

    @api.depends("company_id.name", "business_name")
    def _compute_name(self):
        for connection in self:
            if connection.business_name:
                connection.name = f"{connection.company_id.name} → {connection.business_name}"
            else:
                connection.name = connection.company_id.name

    # ------------------------------------------------------------------
    # Lookup
    # ------------------------------------------------------------------
    @api.model
    def _for_company(self, company=None, raise_if_missing=True):
        company = company or self.env.company
        connection = self.sudo().search([("company_id", "=", company.id)], limit=1)
        if not connection and raise_if_missing:
            raise UserError(
                _("The company %(company)s is not connected to Sage.", company=company.name)
            )
        return connection

    # ------------------------------------------------------------------
    # OAuth and tokens
    # ------------------------------------------------------------------
    def _sage_redirect_uri(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url")
        return f"{base_url.rstrip('/')}/sage_one/oauth/callback"

    def _sage_oauth(self):
        self.ensure_one()
        connection = self.sudo()
        return SageOAuth(
            connection.client_id or "",
            connection.client_secret or "",
            self._sage_redirect_uri(),
            authorize_url=connection.authorize_url,
            token_url=connection.token_url,
            revoke_url=connection.revoke_url,
        )

    def _sage_store_token(self, token):
        """Write a token pair received from Sage (the refresh token rotates)."""
        self.ensure_one()
        self.sudo().write(self._sage_token_values(token))

    @api.model
    def _sage_token_values(self, token):
        def to_datetime(epoch):
            if not epoch:
                return False
            return datetime.fromtimestamp(int(epoch), tz=timezone.utc).replace(tzinfo=None)

        return {
            "access_token": token["access_token"],
            "refresh_token": token["refresh_token"],
            "access_token_expires_at": to_datetime(token.get("expires_at")),
            "refresh_token_expires_at": to_datetime(token.get("refresh_token_expires_at")),
        }

    def _sage_access_token(self):
        """A valid access token, refreshed first when it is about to expire."""
        self.ensure_one()
        connection = self.sudo()
        if connection.state == "not_connected" or not connection.refresh_token:
            raise UserError(_("Connect %(company)s to Sage first.", company=self.company_id.name))
        if connection.state == "needs_reconnect":
            raise UserError(
                _(
                    "The Sage connection of %(company)s has expired. "
                    "A system administrator must reconnect it in Settings.",
                    company=self.company_id.name,
                )
            )
        expires_at = connection.access_token_expires_at
        if (
            connection.access_token
            and expires_at
            and (expires_at - fields.Datetime.now()).total_seconds() > ACCESS_TOKEN_MARGIN_SECONDS
        ):
            return connection.access_token
        return self._sage_refresh_access_token(stale_token=connection.access_token)

    def _sage_refresh_access_token(self, stale_token=None):
        """Refresh the token pair once, whatever the number of callers.

        Sage rotates refresh tokens: the old one dies when a new pair is issued.
        The row is locked and re-read, so a second worker that waited for the
        lock reuses the pair the first one obtained instead of burning it. The
        new pair is committed at once in its own transaction, so a rollback of
        the caller's work cannot lose it.
        """
        self.ensure_one()
        try:
            with self.env.registry.cursor() as cr:
                token = self._sage_refresh_in_cursor(cr, stale_token)
        except _RowNotVisible:
            # The record was created in the caller's transaction (not committed
            # yet): only that transaction can see it, so refresh in it.
            token = self._sage_refresh_in_cursor(self.env.cr, stale_token)
        self.invalidate_recordset(list(TOKEN_FIELDS) + ["state"])
        return token

    def _sage_refresh_in_cursor(self, cr, stale_token):
        env = self.env(cr=cr, su=True)
        if cr is not self.env.cr:
            cr.execute("SET LOCAL lock_timeout = %s", (REFRESH_LOCK_TIMEOUT_MS,))
        try:
            cr.execute(
                "SELECT id FROM sage_connection WHERE id = %s FOR NO KEY UPDATE",
                (self.id,),
            )
        except psycopg2.errors.LockNotAvailable:
            if cr is self.env.cr:
                raise
            raise _RowNotVisible() from None
        if not cr.fetchone():
            raise _RowNotVisible()
        connection = env["sage.connection"].browse(self.id)
        connection.invalidate_recordset()
        if connection.access_token and connection.access_token != stale_token:
            expires_at = connection.access_token_expires_at
            if expires_at and (
                (expires_at - fields.Datetime.now()).total_seconds() > ACCESS_TOKEN_MARGIN_SECONDS
            ):
                return connection.access_token
        try:
            token = connection._sage_oauth().refresh(connection.refresh_token)
        except SageReauthorizationRequired:
            connection.write({"state": "needs_reconnect"})
            connection._sage_notify_needs_reconnect()
            if cr is not self.env.cr:
                cr.commit()
            raise
        connection._sage_store_token(token)
        if connection.state != "connected" and connection.business_id:
            connection.state = "connected"
        _logger.info("Sage connection %s: access token refreshed", self.id)
        return token["access_token"]

    def _sage_notify_needs_reconnect(self):
        """Hook: tell the financial managers the connection must be renewed."""

    def _sage_client(self, business_id=None):
        """A Sage API client bound to this connection's business."""
        self.ensure_one()
        last_token = {"value": self._sage_access_token()}

        def refresh():
            # Called by the client on a 401: the token it holds is the stale one.
            last_token["value"] = self._sage_refresh_access_token(stale_token=last_token["value"])
            return last_token["value"]

        connection = self.sudo()
        return SageClient(
            connection.api_url,
            access_token=last_token["value"],
            refresh=refresh,
            business_id=business_id or connection.business_id,
        )

    # ------------------------------------------------------------------
    # Reference data
    # ------------------------------------------------------------------
    def action_sage_sync_reference_data(self):
        """Button: copy ledgers, tax rates and currencies from Sage."""
        self.ensure_one()
        counts = self._sage_sync_reference_data()
        return (
            {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "type": "success",
                    "title": _("Sage reference data synchronised"),
                    "message": _(
                        "%(ledgers)s ledger accounts, %(taxes)s tax rates and "
                        "%(currencies)s currencies are available.",
                        ledgers=len(self.ledger_account_ids),
                        taxes=len(self.tax_rate_ids),
                        currencies=len(self.currency_ids),
                    ),
                    "next": {"type": "ir.actions.client", "tag": "soft_reload"},
                },
            }
            if counts
            else True
        )

    def _sage_sync_reference_data(self):
        self.ensure_one()
        client = self._sage_client()
        counts = {
            "ledgers": self.env["sage.ledger.account"]._sage_sync(
                self,
                client.list_ledger_accounts(visible_in="sales"),
                mapping.ledger_account_values,
            ),
            "taxes": self.env["sage.tax.rate"]._sage_sync(
                self,
                mapping.visible_tax_rates(client.list_tax_rates()),
                mapping.tax_rate_values,
            ),
            "currencies": self.env["sage.currency"]._sage_sync(
                self, client.list_currencies(), mapping.currency_values
            ),
        }
        self.sudo().last_reference_sync = fields.Datetime.now()
        return counts

    @api.model
    def _cron_sage_sync_reference_data(self):
        for connection in self.search([("state", "=", "connected")]):
            try:
                with self.env.cr.savepoint():
                    connection._sage_sync_reference_data()
            except (SageError, UserError) as error:
                # One failing business must not stop the others.
                _logger.warning(
                    "Sage connection %s: reference data sync failed: %s", connection.id, error
                )


class _RowNotVisible(Exception):
    """The connection row cannot be locked from a separate transaction."""
