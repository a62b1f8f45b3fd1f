import logging
from datetime import datetime, timezone

import psycopg2
from oauthlib.oauth2 import InsecureTransportError

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..sage_api import SageClient, SageOAuth, connection_rules, mapping
from ..sage_api.exceptions import SageAuthError, SageError, SageReauthorizationRequired

_logger = logging.getLogger(__name__)

SAGE_API_URL = "https://api.accounting.sage.com/v3.1"
SAGE_AUTHORIZE_URL = "https://www.sageone.com/oauth2/auth/central"
SAGE_TOKEN_URL = "https://oauth.accounting.sage.com/token"
SAGE_REVOKE_URL = "https://oauth.accounting.sage.com/revoke"
SAGE_APP_URL = "https://accounts-extra.accounting.sage.com"

# Refresh a little before Sage says the access token expires, so that a call
# started just before expiry does not bounce with a 401.
ACCESS_TOKEN_MARGIN_SECONDS = 30
# How long a second worker waits for the row lock held by the refreshing one
# (longer than the 20 s timeout of the token call it waits for).
REFRESH_LOCK_TIMEOUT_MS = 25000
# Should a side transaction still fail to serialize, it is retried afresh.
REFRESH_SERIALIZATION_RETRIES = 3
NEEDS_RECONNECT_LOCK_TIMEOUT_MS = 5000

TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "access_token_expires_at",
    "refresh_token_expires_at",
)
ENDPOINT_FIELDS = ("api_url", "authorize_url", "token_url", "revoke_url", "app_url")
# Only system administrators may change these: tokens travel to the endpoints,
# and the rest decides which Sage business receives the company's documents.
SYSTEM_ONLY_FIELDS = frozenset(
    ENDPOINT_FIELDS
    + TOKEN_FIELDS
    + (
        "company_id",
        "country",
        "client_id",
        "client_secret",
        "business_id",
        "business_name",
        "business_currency",
        "state",
        "test_contact_id",
    )
)
RECONNECT_ACTIVITY_TYPE = "sage_one_connector.mail_activity_type_sage_reconnect"
FINANCIAL_MANAGER_GROUP = "sage_one_connector.group_sage_financial_manager"


class SageConnectionToken(models.Model):
    """The OAuth token pair of one connection, in its own row.

    Refreshes commit this row from a separate transaction at once. Were the
    tokens columns of `sage_connection`, any later write of the caller's
    transaction to the connection (a sync watermark, the last reference-data
    sync) would hit a serialization failure under REPEATABLE READ.
    """

    _name = "sage.connection.token"
    _description = "Sage OAuth token pair"

    connection_id = fields.Many2one(
        "sage.connection", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    access_token = fields.Char(groups="base.group_system", copy=False)
    refresh_token = fields.Char(groups="base.group_system", copy=False)
    access_token_expires_at = fields.Datetime(groups="base.group_system", copy=False)
    refresh_token_expires_at = fields.Datetime(groups="base.group_system", copy=False)

    _sql_constraints = [
        ("connection_uniq", "UNIQUE(connection_id)", "A connection has one token pair."),
    ]


class SageConnection(models.Model):
    """The link between one Odoo company and one Sage business."""

    _name = "sage.connection"
    _description = "Sage Business Cloud connection"
    _inherit = ["mail.thread", "mail.activity.mixin"]
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
    access_token = fields.Char(
        compute="_compute_tokens", inverse="_inverse_access_token", groups="base.group_system"
    )
    refresh_token = fields.Char(
        compute="_compute_tokens", inverse="_inverse_refresh_token", groups="base.group_system"
    )
    access_token_expires_at = fields.Datetime(
        compute="_compute_tokens",
        inverse="_inverse_access_token_expires_at",
        groups="base.group_system",
    )
    refresh_token_expires_at = fields.Datetime(
        "Connection expires",
        compute="_compute_tokens",
        inverse="_inverse_refresh_token_expires_at",
        groups="base.group_system",
    )
    business_id = fields.Char("Sage business ID", readonly=True, copy=False, index=True)
    business_name = fields.Char("Sage business", readonly=True, copy=False)
    business_currency = fields.Char(readonly=True, copy=False)
    multi_currency_enabled = fields.Boolean(
        "Multi-currency in Sage",
        readonly=True,
        copy=False,
        help="Sage accepts documents in other currencies than the business currency only "
        "when multi-currency is switched on in the business (read from Sage).",
    )
    last_reference_sync = fields.Datetime(readonly=True, copy=False)
    test_contact_id = fields.Char(
        "Sage test contact",
        readonly=True,
        copy=False,
        help="Sage contact of the optional test invoice of Test connection.",
    )

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
    ledger_mapping_ids = fields.One2many("sage.ledger.mapping", "connection_id")
    ledger_mapping_count = fields.Integer(compute="_compute_ledger_mapping_count")

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

    def _compute_ledger_mapping_count(self):
        counts = dict(
            self.env["sage.ledger.mapping"]._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for connection in self:
            connection.ledger_mapping_count = counts.get(connection, 0)

    # ------------------------------------------------------------------
    # Constraints and protected fields
    # ------------------------------------------------------------------
    @api.constrains(*ENDPOINT_FIELDS)
    def _check_endpoints(self):
        for connection in self:
            for name in ENDPOINT_FIELDS:
                url = connection[name]
                if name == "app_url" and not url:
                    continue
                problem = connection_rules.endpoint_problem(url)
                if problem:
                    label = connection._fields[name].get_description(self.env)["string"]
                    raise ValidationError(
                        self.env._(
                            "%(field)s must be a full https:// address (plain http is only "
                            "accepted for a sandbox on this machine), not %(url)s.",
                            field=label,
                            url=url or "",
                        )
                    )

    @api.constrains("default_ledger_id", "purchase_ledger_id", "bad_debt_ledger_id")
    def _check_ledgers_of_this_business(self):
        for connection in self:
            for name in ("default_ledger_id", "purchase_ledger_id", "bad_debt_ledger_id"):
                ledger = connection[name]
                if ledger and ledger.connection_id != connection:
                    label = connection._fields[name].get_description(self.env)["string"]
                    raise ValidationError(
                        self.env._(
                            "%(field)s: the ledger %(ledger)s belongs to another Sage business. "
                            "Pick one of the ledgers synchronised for %(connection)s.",
                            field=label,
                            ledger=ledger.display_name,
                            connection=connection.display_name,
                        )
                    )

    @api.constrains("numbering_mode", "number_prefix", "number_suffix")
    def _check_numbering(self):
        for connection in self:
            problem = connection_rules.numbering_problem(
                connection.number_prefix, connection.number_suffix
            )
            if not problem:
                continue
            code, limit = problem
            if code == "whitespace":
                message = self.env._("The number prefix and suffix cannot contain spaces.")
            elif code == "prefix_too_long":
                message = self.env._(
                    "The number prefix can be at most %(limit)s characters long "
                    "(Sage's limit for invoice number prefixes).",
                    limit=limit,
                )
            else:
                message = self.env._(
                    "The number prefix and suffix together can be at most %(limit)s "
                    "characters long, so that Odoo's number still fits in Sage's "
                    "%(reference)s-character reference.",
                    limit=limit,
                    reference=connection_rules.MAX_REFERENCE_LENGTH,
                )
            raise ValidationError(message)

    @api.constrains("default_due_days")
    def _check_due_days(self):
        for connection in self:
            if connection.default_due_days > connection_rules.MAX_DUE_DAYS:
                raise ValidationError(
                    self.env._(
                        "Default due days must be between 0 and %(max)s.",
                        max=connection_rules.MAX_DUE_DAYS,
                    )
                )

    def _sage_check_system_user(self):
        if not self.env.su and not self.env.user.has_group("base.group_system"):
            raise AccessError(
                self.env._("Only system administrators can connect or disconnect Sage.")
            )

    @api.model_create_multi
    def create(self, vals_list):
        self._sage_check_system_user()
        return super().create(vals_list)

    def write(self, vals):
        protected = SYSTEM_ONLY_FIELDS.intersection(vals)
        if protected and not self.env.su and not self.env.user.has_group("base.group_system"):
            raise AccessError(
                self.env._(
                    "Only system administrators can change the Sage connection itself "
                    "(%(fields)s). Financial managers can change the posting rules.",
                    fields=", ".join(sorted(protected)),
                )
            )
        return super().write(vals)

    # ------------------------------------------------------------------
    # Lookup
    # ------------------------------------------------------------------
    @api.model
    def _for_company(self, company=None, raise_if_missing=True):
        company = company or self.env.company
        connection = self.sudo().search([("company_id", "=", company.id)], limit=1)
        if not connection and raise_if_missing:
            raise UserError(
                self.env._(
                    "The company %(company)s is not connected to Sage.", company=company.name
                )
            )
        return connection

    @api.model
    def _sage_get_or_create(self, company):
        """The company's connection, created (not connected) when missing."""
        self._sage_check_system_user()
        connection = self._for_company(company, raise_if_missing=False)
        if not connection:
            connection = self.sudo().create({"company_id": company.id})
        return connection

    # ------------------------------------------------------------------
    # Token storage
    # ------------------------------------------------------------------
    def _sage_token_row(self, create=False):
        self.ensure_one()
        Token = self.env["sage.connection.token"].sudo()
        row = Token.search([("connection_id", "=", self.id)], limit=1)
        if not row and create:
            row = Token.create({"connection_id": self.id})
        return row

    @api.depends_context("uid")
    def _compute_tokens(self):
        # `groups` only guards read(), search() and friends: a computed field is
        # computed on any other access (export_data() among them). Refuse like
        # Odoo refuses a stored system-only field; the cache is kept per user
        # and sudo (depends_context) so a value read by sudo() is never served
        # to the user.
        if not self.env.su and not self.env.user.has_group("base.group_system"):
            _logger.info(
                "Sage connection tokens refused to user %s (not a system administrator)",
                self.env.uid,
            )
            raise AccessError(
                self.env._("Only system administrators can see the Sage connection's tokens.")
            )
        rows = (
            self.env["sage.connection.token"]
            .sudo()
            .search([("connection_id", "in", [cid for cid in self.ids if cid])])
        )
        by_connection = {row.connection_id.id: row for row in rows}
        for connection in self:
            row = by_connection.get(connection.id)
            for name in TOKEN_FIELDS:
                connection[name] = row[name] if row else False

    # One inverse per field: while one token field is written, the ORM protects
    # every field of the shared compute, so reading the others would give False.
    def _sage_inverse_token_field(self, name):
        for connection in self:
            connection._sage_token_row(create=True).write({name: connection[name]})

    def _inverse_access_token(self):
        self._sage_inverse_token_field("access_token")

    def _inverse_refresh_token(self):
        self._sage_inverse_token_field("refresh_token")

    def _inverse_access_token_expires_at(self):
        self._sage_inverse_token_field("access_token_expires_at")

    def _inverse_refresh_token_expires_at(self):
        self._sage_inverse_token_field("refresh_token_expires_at")

    def _sage_invalidate_tokens(self):
        self.invalidate_recordset(list(TOKEN_FIELDS))
        self.env["sage.connection.token"].invalidate_model(list(TOKEN_FIELDS))

    def _sage_store_token(self, token):
        """Write a token pair received from Sage (the refresh token rotates)."""
        self.ensure_one()
        self._sage_token_row(create=True).write(self._sage_token_values(token))
        self._sage_invalidate_tokens()

    def _sage_clear_tokens(self):
        for connection in self:
            connection._sage_token_row().unlink()
        self._sage_invalidate_tokens()

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

    @staticmethod
    def _sage_token_fresh(access_token, expires_at):
        return bool(
            access_token
            and expires_at
            and (expires_at - fields.Datetime.now()).total_seconds() > ACCESS_TOKEN_MARGIN_SECONDS
        )

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

    def _sage_access_token(self):
        """A valid access token, refreshed first when it is about to expire."""
        self.ensure_one()
        connection = self.sudo()
        if connection.state == "needs_reconnect":
            raise UserError(
                self.env._(
                    "The Sage connection of %(company)s has expired. "
                    "A system administrator must reconnect it in Settings.",
                    company=self.company_id.name,
                )
            )
        if connection.state != "connected" or not connection.refresh_token:
            raise UserError(
                self.env._("Connect %(company)s to Sage first.", company=self.company_id.name)
            )
        return self._sage_current_access_token()

    def _sage_current_access_token(self):
        """The stored access token, refreshed when needed, whatever the state.

        The Connect flow uses it while the business is still being chosen;
        everything else goes through `_sage_access_token`.
        """
        self.ensure_one()
        connection = self.sudo()
        if not connection.refresh_token:
            raise UserError(
                self.env._("Connect %(company)s to Sage first.", company=self.company_id.name)
            )
        if self._sage_token_fresh(connection.access_token, connection.access_token_expires_at):
            return connection.access_token
        return self._sage_refresh_access_token(stale_token=connection.access_token)

    def _sage_refresh_access_token(self, stale_token=None):
        """Refresh the token pair once, whatever the number of callers.

        Sage rotates refresh tokens: the old one dies when a new pair is issued.
        The token row is locked and re-read, so a second worker that waited for
        the lock reuses the pair the first one obtained instead of burning it.
        The new pair is committed at once in its own transaction, so a rollback
        of the caller's work cannot lose it. `stale_token` is the access token
        the caller holds (or that Sage refused): a different, still valid
        stored token is returned without calling Sage.
        """
        self.ensure_one()
        try:
            try:
                token = self._sage_refresh_in_new_cursor(stale_token)
            except _RowNotVisible:
                # The token row was written by the caller's own transaction (not
                # committed yet): only that transaction can lock it, so refresh in it.
                token = self._sage_refresh_in_cursor(self.env.cr, stale_token)
        except SageReauthorizationRequired:
            self._sage_mark_needs_reconnect()
            raise
        finally:
            self._sage_invalidate_tokens()
        return token

    def _sage_refresh_in_new_cursor(self, stale_token):
        for _attempt in range(REFRESH_SERIALIZATION_RETRIES):
            try:
                with self.env.registry.cursor() as cr:
                    return self._sage_refresh_in_cursor(cr, stale_token)
            except psycopg2.errors.SerializationFailure:
                # Another worker committed a new pair while this one waited for
                # the lock; a new transaction sees that pair and reuses it.
                _logger.info("Sage connection %s: refreshed concurrently, re-reading", self.id)
        raise _RowNotVisible()

    def _sage_refresh_in_cursor(self, cr, stale_token):
        env = self.env(cr=cr, su=True)
        separate = cr is not self.env.cr
        if separate:
            self._sage_prepare_side_cursor(cr, REFRESH_LOCK_TIMEOUT_MS)
        try:
            cr.execute(
                "SELECT id FROM sage_connection_token WHERE connection_id = %s FOR NO KEY UPDATE",
                (self.id,),
            )
        except psycopg2.errors.LockNotAvailable:
            if not separate:
                raise
            raise _RowNotVisible() from None
        row = cr.fetchone()
        if not row:
            if separate:
                raise _RowNotVisible()
            raise UserError(
                self.env._("Connect %(company)s to Sage first.", company=self.company_id.name)
            )
        token_row = env["sage.connection.token"].browse(row[0])
        token_row.invalidate_recordset()
        if token_row.access_token != stale_token and self._sage_token_fresh(
            token_row.access_token, token_row.access_token_expires_at
        ):
            return token_row.access_token
        connection = env["sage.connection"].browse(self.id)
        token = connection._sage_oauth().refresh(token_row.refresh_token)
        token_row.write(self._sage_token_values(token))
        token_row.flush_recordset()
        _logger.info("Sage connection %s: access token refreshed", self.id)
        return token["access_token"]

    def _sage_prepare_side_cursor(self, cr, lock_timeout_ms):
        """Settings of a transaction opened beside the caller's.

        READ COMMITTED: a worker that waited for the lock then reads the pair
        the first one committed, instead of failing to serialize (REPEATABLE
        READ, Odoo's default). In test mode the "side" cursor shares the
        test's transaction, whose isolation cannot change any more.
        """
        if not self.env.registry.in_test_mode():
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cr.execute("SET LOCAL lock_timeout = %s", (lock_timeout_ms,))

    def _sage_mark_needs_reconnect(self):
        """Persist needs_reconnect at once: the caller's transaction may roll back."""
        self.ensure_one()
        try:
            with self.env.registry.cursor() as cr:
                self._sage_prepare_side_cursor(cr, NEEDS_RECONNECT_LOCK_TIMEOUT_MS)
                connection = self.env(cr=cr, su=True)["sage.connection"].browse(self.id)
                if not connection.exists():
                    raise _RowNotVisible()
                connection._sage_set_needs_reconnect()
        except (
            _RowNotVisible,
            psycopg2.errors.LockNotAvailable,
            psycopg2.errors.SerializationFailure,
        ):
            # Not committed yet, or locked by the caller itself: mark it there.
            self.sudo()._sage_set_needs_reconnect()
        self.invalidate_recordset(["state"])

    def _sage_set_needs_reconnect(self):
        for connection in self.sudo():
            if connection.state != "connected":
                continue
            connection.state = "needs_reconnect"
            connection.message_post(
                body=self.env._(
                    "Sage refused to renew the connection (the authorization expired or "
                    "was revoked). A system administrator must reconnect it."
                )
            )
            connection._sage_notify_needs_reconnect()

    def _sage_notify_needs_reconnect(self):
        """Give each financial manager of the company one "Reconnect Sage" activity."""
        activity_type = self.env.ref(RECONNECT_ACTIVITY_TYPE, raise_if_not_found=False)
        if not activity_type:
            return
        model_id = self.env["ir.model"]._get_id(self._name)
        group = self.env.ref(FINANCIAL_MANAGER_GROUP)
        for connection in self.sudo():
            managers = group.users.filtered(
                lambda user, company=connection.company_id: (
                    user.active and not user.share and company in user.company_ids
                )
            )
            already = (
                self.env["mail.activity"]
                .sudo()
                .search(
                    [
                        ("res_model", "=", self._name),
                        ("res_id", "=", connection.id),
                        ("activity_type_id", "=", activity_type.id),
                    ]
                )
                .user_id
            )
            self.env["mail.activity"].sudo().create(
                [
                    {
                        "activity_type_id": activity_type.id,
                        "res_model_id": model_id,
                        "res_id": connection.id,
                        "user_id": manager.id,
                        "summary": self.env._("Reconnect Sage"),
                        "note": self.env._(
                            "Sage no longer accepts the connection of %(company)s: nothing "
                            "can be sent until a system administrator clicks Reconnect in "
                            "Settings > Invoicing > Sage Business Cloud.",
                            company=connection.company_id.name,
                        ),
                        "automated": True,
                    }
                    for manager in managers - already
                ]
            )

    def _sage_resolve_reconnect_activities(self):
        activity_type = self.env.ref(RECONNECT_ACTIVITY_TYPE, raise_if_not_found=False)
        if not activity_type:
            return
        self.env["mail.activity"].sudo().search(
            [
                ("res_model", "=", self._name),
                ("res_id", "in", self.ids),
                ("activity_type_id", "=", activity_type.id),
            ]
        ).unlink()

    def _sage_client(self, business_id=None):
        """A Sage API client bound to this connection's business."""
        self.ensure_one()
        return self._sage_build_client(self._sage_access_token(), business_id=business_id)

    def _sage_build_client(self, access_token, business_id=None, **client_options):
        """A client that refreshes through this connection on a 401."""
        self.ensure_one()

        def refresh(refused_token):
            # Called by the client on a 401 with the token Sage refused.
            return self._sage_refresh_access_token(stale_token=refused_token)

        connection = self.sudo()
        return SageClient(
            connection.api_url,
            access_token=access_token,
            refresh=refresh,
            business_id=business_id or connection.business_id,
            **client_options,
        )

    # ------------------------------------------------------------------
    # Connect, choose the business, disconnect
    # ------------------------------------------------------------------
    def _sage_has_app_credentials(self):
        """A client ID and secret are entered (blanks pasted into Settings are not:
        Sage would refuse them on its own page, out of Odoo's reach)."""
        credentials = (self.sudo().client_id, self.sudo().client_secret)
        return all((value or "").strip() for value in credentials)

    def action_sage_connect(self):
        """Button: send the administrator to Sage to authorize Odoo."""
        self.ensure_one()
        self._sage_check_system_user()
        self.check_access("write")
        connection = self.sudo()
        if not connection._sage_has_app_credentials():
            raise UserError(
                self.env._(
                    "Enter the client ID and client secret of your Sage developer app "
                    "(Settings > Invoicing > Sage Business Cloud) before connecting."
                )
            )
        nonce = self.env["sage.oauth.state"]._sage_issue(connection)
        try:
            url = connection._sage_oauth().authorization_url(nonce, country=connection.country)
        except InsecureTransportError:
            raise UserError(
                self.env._(
                    "Sage's authorize URL must use https. A sandbox on plain http needs "
                    "OAUTHLIB_INSECURE_TRANSPORT=1 in the server environment."
                )
            ) from None
        return {"type": "ir.actions.act_url", "url": url, "target": "self"}

    def _sage_connect_with_code(self, code):
        """Exchange the authorization code, then select the business.

        Returns a `sage.business.select` wizard when the Sage user has several
        businesses, else an empty recordset (connected). Raises UserError with
        nothing changed on any failure.
        """
        self.ensure_one()
        self._sage_check_system_user()
        connection = self.sudo()
        if not connection._sage_has_app_credentials():
            raise UserError(self.env._("The Sage client ID or secret is missing."))
        try:
            token = connection._sage_oauth().exchange_code(code)
        except SageReauthorizationRequired:
            raise UserError(
                self.env._(
                    "Sage refused the authorization code: it was already used or has "
                    "expired (codes are valid for one minute). Click Connect again."
                )
            ) from None
        except SageAuthError:
            raise UserError(
                self.env._(
                    "Sage refused the client ID or secret. Check them against your app "
                    "in the Sage developer portal."
                )
            ) from None
        except (SageError, InsecureTransportError) as error:
            raise UserError(
                self.env._("Could not obtain a token from Sage: %(error)s", error=str(error))
            ) from None
        try:
            with self.env.cr.savepoint():
                return connection._sage_connect_with_token(token)
        except (UserError, SageError) as error:
            # The new grant is of no use: give it back to Sage.
            connection._sage_revoke_quietly(token.get("refresh_token"))
            if isinstance(error, UserError):
                raise
            raise UserError(
                self.env._("Sage could not complete the connection: %(error)s", error=str(error))
            ) from None

    def _sage_connect_with_token(self, token):
        lister = SageClient(self.api_url, access_token=token["access_token"])
        businesses = lister.list_businesses()
        if not businesses:
            raise UserError(
                self.env._(
                    "This Sage user has no Sage Accounting business. Sign in to Sage with "
                    "the user who owns the business, then click Connect again."
                )
            )
        self._sage_store_token(token)
        if len(businesses) == 1:
            self._sage_finish_connect(businesses[0]["id"])
            return self.env["sage.business.select"]
        # Several businesses: the tokens wait on the connection (where refreshes
        # keep them alive) until the administrator picks one.
        if self.state == "connected":
            self.state = "not_connected"
        return self.env["sage.business.select"]._sage_open_for(self, businesses)

    def _sage_finish_connect(self, business_id):
        """Bind the stored tokens to `business_id`, check it and sync reference data."""
        self.ensure_one()
        self._sage_check_system_user()
        connection = self.sudo()
        connection._sage_check_business_change(business_id)
        client = connection._sage_build_client(
            connection._sage_current_access_token(), business_id=business_id
        )
        business = client.get_business(business_id)
        if not connection_rules.active_subscriptions(business):
            raise UserError(
                self.env._(
                    "The subscription of the Sage business %(business)s is not active. "
                    "Renew it in Sage, or choose another business.",
                    business=business.get("name") or business_id,
                )
            )
        settings = client.get_financial_settings() or {}
        country = ((business.get("country") or {}).get("id") or "").lower()
        values = {
            "business_id": business_id,
            "business_name": business.get("name") or business.get("displayed_as"),
            **mapping.financial_settings_values(settings),
            "state": "connected",
        }
        if country in dict(self._fields["country"].selection):
            values["country"] = country
        connection.write(values)
        connection._sage_sync_reference_data()
        connection._sage_resolve_reconnect_activities()
        connection.message_post(
            body=self.env._(
                "Connected to the Sage business %(business)s by %(user)s.",
                business=connection.business_name,
                user=self.env.user.name,
            )
        )

    def _sage_check_business_change(self, business_id):
        if not self.business_id or self.business_id == business_id:
            return
        sent = (
            self.env["account.move"]
            .sudo()
            .search_count([("sage_connection_id", "=", self.id), ("sage_id", "!=", False)], limit=1)
        )
        if sent:
            raise UserError(
                self.env._(
                    "%(company)s has already sent documents to the Sage business "
                    "%(business)s. Connect to that business again: another business "
                    "would not know those documents.",
                    company=self.company_id.name,
                    business=self.business_name or self.business_id,
                )
            )
        # Contacts of the previous business mean nothing in the new one.
        self.env["sage.contact.link"].sudo().search([("connection_id", "=", self.id)]).unlink()
        self.test_contact_id = False

    def _sage_revoke_quietly(self, refresh_token):
        if not refresh_token:
            return
        try:
            self._sage_oauth().revoke(refresh_token)
        except (SageError, ValueError, InsecureTransportError) as error:
            # Best effort: the grant expires by itself after 31 days.
            _logger.warning("Sage connection %s: revoking a token failed: %s", self.id, error)

    def action_sage_disconnect(self):
        """Button: revoke the grant at Sage (best effort) and forget the tokens."""
        self._sage_check_system_user()
        self.check_access("write")
        for connection in self.sudo():
            if connection.client_id:
                connection._sage_revoke_quietly(connection.refresh_token)
            connection._sage_clear_tokens()
            connection.state = "not_connected"
            connection._sage_resolve_reconnect_activities()
            connection.message_post(
                body=self.env._("Disconnected from Sage by %(user)s.", user=self.env.user.name)
            )
        return {"type": "ir.actions.client", "tag": "soft_reload"}

    def action_sage_test_connection(self):
        """Button: open the Test connection wizard."""
        self.ensure_one()
        return self.env["sage.connection.test"]._sage_open_for(self)

    # ------------------------------------------------------------------
    # Keep-alive
    # ------------------------------------------------------------------
    @api.model
    def _cron_sage_keep_alive(self):
        """Refresh idle connections so their 31-day refresh token never lapses."""
        now = fields.Datetime.now()
        for connection in self.sudo().search([("state", "=", "connected")]):
            if not connection_rules.refresh_due(connection.refresh_token_expires_at, now):
                continue
            try:
                connection._sage_refresh_access_token(stale_token=connection.access_token)
            except SageReauthorizationRequired:
                _logger.warning("Sage connection %s: needs to be reconnected", connection.id)
            except (SageError, UserError) as error:
                # Network trouble: tomorrow's run tries again, well before expiry.
                _logger.warning("Sage connection %s: keep-alive failed: %s", connection.id, error)

    # ------------------------------------------------------------------
    # Reference data
    # ------------------------------------------------------------------
    def _sage_check_manager(self):
        if not self.env.su and not self.env.user.has_groups(
            f"base.group_system,{FINANCIAL_MANAGER_GROUP}"
        ):
            raise AccessError(
                self.env._("Only Sage financial managers and administrators can do this.")
            )

    def action_sage_sync_reference_data(self):
        """Button: copy ledgers, tax rates and currencies from Sage."""
        self.ensure_one()
        self._sage_check_manager()
        self.check_access("read")
        try:
            self.sudo()._sage_sync_reference_data()
        except SageError as error:
            raise UserError(
                self.env._("Sage reference data could not be read: %(error)s", error=str(error))
            ) from None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Sage reference data synchronised"),
                "message": self.env._(
                    "%(ledgers)s ledger accounts, %(taxes)s tax rates and "
                    "%(currencies)s currencies are available.",
                    ledgers=len(self.ledger_account_ids),
                    taxes=len(self.tax_rate_ids),
                    currencies=len(self.currency_ids),
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

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
        self.sudo().write(
            dict(
                mapping.financial_settings_values(client.get_financial_settings() or {}),
                last_reference_sync=fields.Datetime.now(),
            )
        )
        return counts

    @api.model
    def _cron_sage_sync_reference_data(self):
        for connection in self.sudo().search([("state", "=", "connected")]):
            try:
                with self.env.cr.savepoint():
                    connection._sage_sync_reference_data()
            except (SageError, UserError) as error:
                # One failing business must not stop the others.
                _logger.warning(
                    "Sage connection %s: reference data sync failed: %s", connection.id, error
                )

    # ------------------------------------------------------------------
    # Navigation
    # ------------------------------------------------------------------
    def _sage_form_action(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "main",
        }

    def action_sage_open_ledger_mappings(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sage_one_connector.sage_ledger_mapping_action"
        )
        action["domain"] = [("connection_id", "=", self.id)]
        action["context"] = {"default_connection_id": self.id}
        return action

    def action_sage_open_tax_mapping(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sage_one_connector.account_tax_sage_mapping_action"
        )
        action["domain"] = [
            ("type_tax_use", "=", "sale"),
            ("company_id", "=", self.company_id.id),
        ]
        return action

    def action_sage_open_ledger_accounts(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sage_one_connector.sage_ledger_account_action"
        )
        action["domain"] = [("connection_id", "=", self.id)]
        return action

    def action_sage_open_tax_rates(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sage_one_connector.sage_tax_rate_action"
        )
        action["domain"] = [("connection_id", "=", self.id)]
        return action


class _RowNotVisible(Exception):
    """The token row cannot be locked from a separate transaction."""
