"""Shared setup of the Odoo tests: a real Sage sandbox on a free local port.

Every Odoo test that talks to Sage talks to the project's sandbox over HTTP
(127.0.0.1 passes Odoo's blocked-request guard), through the same client and
connection code that production uses against real Sage.
"""

import os
import time
from unittest.mock import patch

from odoo.tests import new_test_user

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

try:
    from sage_sandbox import SageSandbox
except ImportError:  # pragma: no cover - the README test command puts it on the path
    SageSandbox = None

TEST_CLIENT_ID = "odoo-test-client"
TEST_CLIENT_SECRET = "odoo-test-secret"  # a sandbox-only credential


class SageSandboxCase(AccountTestInvoicingCommon):
    """An invoicing company connected to a fresh sandbox business.

    Provides: cls.sandbox, cls.sage_business_id, cls.connection (connected, with
    reference data synced and a default ledger, bad-debts ledger and a mapping
    of the company's default sale tax), and two users: cls.team_user (Accounts
    team) and cls.manager_user (Financial manager).
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if SageSandbox is None:
            raise ImportError("sage_sandbox is not importable: run the tests with scripts/test.sh")
        cls.sandbox = SageSandbox()
        cls.sandbox.start()
        cls.addClassCleanup(cls.sandbox.stop)
        # The sandbox speaks plain http on 127.0.0.1: oauthlib allows that only when told.
        cls.startClassPatcher(patch.dict(os.environ, {"OAUTHLIB_INSECURE_TRANSPORT": "1"}))
        base_url = cls.env["ir.config_parameter"].sudo().get_param("web.base.url")
        cls.redirect_uri = f"{base_url.rstrip('/')}/sage_one/oauth/callback"
        cls.sandbox.register_app(
            TEST_CLIENT_ID, TEST_CLIENT_SECRET, redirect_uris=[cls.redirect_uri]
        )
        sage_user = cls.sandbox.add_user(
            email="owner@sage-test.example",
            first_name="Olive",
            last_name="Owner",
            businesses=[
                {
                    "name": "Test Trading Ltd",
                    "country": "GB",
                    "subscription": "ACCOUNTING",
                    "active": True,
                }
            ],
        )
        cls.sage_user_id = sage_user["user_id"]
        cls.sage_business_id = sage_user["business_ids"][0]
        cls.connection = cls._sage_connect(cls.company_data["company"])
        cls.team_user = new_test_user(
            cls.env,
            login="sage_team",
            groups="sage_one_connector.group_sage_accounts_team",
            company_id=cls.company_data["company"].id,
            company_ids=[(6, 0, cls.company_data["company"].ids)],
        )
        cls.manager_user = new_test_user(
            cls.env,
            login="sage_manager",
            groups="sage_one_connector.group_sage_financial_manager",
            company_id=cls.company_data["company"].id,
            company_ids=[(6, 0, cls.company_data["company"].ids)],
        )

    @classmethod
    def _sage_connect(cls, company, business_id=None):
        """Create a connected `sage.connection` for `company`, as Connect would."""
        token = cls.sandbox.issue_tokens(TEST_CLIENT_ID, user_id=cls.sage_user_id)
        # The sandbox answers like Sage's token endpoint (lifetimes in seconds);
        # SageOAuth turns those into expiry instants, as done here.
        now = time.time()
        token = dict(
            token,
            expires_at=now + token["expires_in"],
            refresh_token_expires_at=now + token["refresh_token_expires_in"],
        )
        connection = cls.env["sage.connection"].create(
            {
                "company_id": company.id,
                "api_url": cls.sandbox.api_url,
                "authorize_url": cls.sandbox.authorize_url,
                "token_url": cls.sandbox.token_url,
                "revoke_url": cls.sandbox.revoke_url,
                "app_url": cls.sandbox.url + "/app",
                "client_id": TEST_CLIENT_ID,
                "client_secret": TEST_CLIENT_SECRET,
                "business_id": business_id or cls.sage_business_id,
                "business_name": "Test Trading Ltd",
                "state": "connected",
            }
        )
        connection._sage_store_token(token)
        connection._sage_sync_reference_data()
        ledgers = connection.ledger_account_ids
        connection.write(
            {
                # The sandbox's GB business keeps its books in GBP; most tests
                # want a business whose currency is the company's (the usual
                # case), and set another one where currencies are the subject.
                "business_currency": company.currency_id.name,
                "default_ledger_id": ledgers.filtered(lambda lg: lg.nominal_code == "4000").id,
                "bad_debt_ledger_id": ledgers.filtered(lambda lg: lg.nominal_code == "8100").id,
            }
        )
        return connection

    @classmethod
    def sage_tax_rate(cls, sage_id, connection=None):
        connection = connection or cls.connection
        return connection.tax_rate_ids.filtered(lambda rate: rate.sage_id == sage_id)

    def sage_renew_tokens(self, connection=None):
        """Store a token pair the sandbox accepts on `connection`.

        A test's rollback restores the stored pair, not the sandbox's rotation
        of it: tests that refresh or revoke tokens start with this.
        """
        connection = connection or self.connection
        token = self.sandbox.issue_tokens(TEST_CLIENT_ID, user_id=self.sage_user_id)
        now = time.time()
        connection._sage_store_token(
            dict(
                token,
                expires_at=now + token["expires_in"],
                refresh_token_expires_at=now + token["refresh_token_expires_in"],
            )
        )
