"""Token life: refresh once under concurrency, never lose a rotated token,
keep idle connections alive, and tell the managers when Sage says no."""

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields
from odoo.exceptions import UserError
from odoo.modules.registry import Registry
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.sage_one_connector.sage_api import SageClient
from odoo.addons.sage_one_connector.sage_api.exceptions import SageReauthorizationRequired

from .common import TEST_CLIENT_ID, TEST_CLIENT_SECRET, SageSandboxCase

TOKEN_ROUTE = "POST /token"
QUIET_CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "mail_notrack": True}
CONNECTION_LOGGER = "odoo.addons.sage_one_connector.models.sage_connection"


def _expire(connection):
    connection.sudo().access_token_expires_at = fields.Datetime.now() - timedelta(minutes=1)


@tagged("post_install", "-at_install")
class TestTokenRefreshInTransaction(SageSandboxCase):
    """The connection of the test transaction (not committed)."""

    def setUp(self):
        super().setUp()
        self.sage_renew_tokens()

    def _token_requests(self):
        return self.sandbox.stats()["by_route"].get(TOKEN_ROUTE, 0)

    def test_fresh_token_is_reused_without_calling_sage(self):
        before = self._token_requests()
        token = self.connection._sage_access_token()
        self.assertEqual(token, self.connection.sudo().access_token)
        self.assertEqual(self._token_requests(), before)

    def test_expired_token_is_refreshed_and_the_new_pair_stored(self):
        connection = self.connection.sudo()
        old_access, old_refresh = connection.access_token, connection.refresh_token
        _expire(connection)
        token = self.connection._sage_access_token()
        self.assertNotEqual(token, old_access)
        self.assertEqual(connection.access_token, token)
        self.assertNotEqual(connection.refresh_token, old_refresh)
        self.assertFalse(self.sandbox.state.refresh_tokens[old_refresh]["active"])
        self.assertTrue(self.sandbox.state.refresh_tokens[connection.refresh_token]["active"])
        self.assertGreater(
            connection.refresh_token_expires_at, fields.Datetime.now() + timedelta(days=30)
        )

    def test_a_stale_token_is_replaced_by_the_stored_one(self):
        """A caller holding an old token gets the newer stored one, without a refresh."""
        before = self._token_requests()
        stored = self.connection.sudo().access_token
        self.assertEqual(
            self.connection._sage_refresh_access_token(stale_token="an-older-token"), stored
        )
        self.assertEqual(self._token_requests(), before)

    def test_a_refused_token_is_refreshed_by_the_client(self):
        client = self.connection._sage_client()
        refused = client.access_token
        self.sandbox.expire_access_tokens()
        self.assertTrue(client.get_financial_settings())
        self.assertNotEqual(client.access_token, refused)
        self.assertEqual(client.access_token, self.connection.sudo().access_token)

    def _refused_by_sage(self, call):
        """Like assertRaises, without its savepoint: the new state must stay."""
        try:
            call()
        except SageReauthorizationRequired as error:
            return error
        self.fail("Sage refused the grant: the call must fail")

    def test_revoked_grant_asks_managers_to_reconnect_once(self):
        self.sandbox.state.refresh_tokens[self.connection.sudo().refresh_token]["active"] = False
        _expire(self.connection)
        self._refused_by_sage(self.connection._sage_access_token)
        # Another failure (a client's 401 handler) and another notification do
        # not add activities.
        self._refused_by_sage(
            lambda: self.connection._sage_refresh_access_token(stale_token="refused")
        )
        self.connection._sage_notify_needs_reconnect()
        self.assertEqual(self.connection.state, "needs_reconnect")
        activity_type = self.env.ref("sage_one_connector.mail_activity_type_sage_reconnect")
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "sage.connection"),
                ("res_id", "=", self.connection.id),
                ("activity_type_id", "=", activity_type.id),
            ]
        )
        self.assertEqual(activities.user_id, self.manager_user)
        self.assertEqual(len(activities), 1, "one activity per manager, however many failures")
        # Any later use says clearly what to do.
        with self.assertRaisesRegex(UserError, "must reconnect it in Settings"):
            self.connection._sage_access_token()

        # Reconnecting clears the activities.
        self.sage_renew_tokens()
        self.connection._sage_finish_connect(self.sage_business_id)
        self.assertEqual(self.connection.state, "connected")
        self.assertFalse(activities.exists())

    def test_keep_alive_refreshes_only_connections_close_to_expiry(self):
        connection = self.connection.sudo()
        old_refresh = connection.refresh_token
        connection.refresh_token_expires_at = fields.Datetime.now() + timedelta(days=30)
        self.env["sage.connection"]._cron_sage_keep_alive()
        self.assertEqual(connection.refresh_token, old_refresh, "a fresh grant is left alone")

        connection.refresh_token_expires_at = fields.Datetime.now() + timedelta(days=10)
        self.env["sage.connection"]._cron_sage_keep_alive()
        self.assertNotEqual(connection.refresh_token, old_refresh)
        self.assertGreater(
            connection.refresh_token_expires_at, fields.Datetime.now() + timedelta(days=30)
        )

    def test_keep_alive_survives_sage_trouble(self):
        connection = self.connection.sudo()
        connection.refresh_token_expires_at = fields.Datetime.now() + timedelta(days=10)
        old_refresh = connection.refresh_token
        self.sandbox.fail_next(1, status=503, path_contains="/token")
        with mute_logger(CONNECTION_LOGGER, "odoo.addons.sage_one_connector.sage_api.oauth"):
            self.env["sage.connection"]._cron_sage_keep_alive()
        self.assertEqual(connection.state, "connected")
        self.assertEqual(connection.refresh_token, old_refresh)

        self.sandbox.state.refresh_tokens[old_refresh]["active"] = False
        with mute_logger(CONNECTION_LOGGER):
            self.env["sage.connection"]._cron_sage_keep_alive()
        self.assertEqual(connection.state, "needs_reconnect")

    def test_crons_are_declared(self):
        for xmlid in (
            "sage_one_connector.ir_cron_sage_one_keep_alive",
            "sage_one_connector.ir_cron_sage_one_sync_reference_data",
        ):
            cron = self.env.ref(xmlid)
            self.assertTrue(cron.active)
            self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))

    def test_tokens_are_never_logged(self):
        connection = self.connection.sudo()
        _expire(connection)
        with _captured_logs(
            "odoo.addons.sage_one_connector", "requests_oauthlib", "oauthlib", "urllib3"
        ) as records:
            self.connection._sage_access_token()
            self.connection._sage_client().get_financial_settings()
        output = "\n".join(record.getMessage() for record in records)
        self.assertIn("access token refreshed", output)
        for secret in (connection.access_token, connection.refresh_token, TEST_CLIENT_SECRET):
            self.assertNotIn(secret, output)


@contextmanager
def _captured_logs(*logger_names):
    """Every record, DEBUG included, of the named loggers."""
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


@tagged("post_install", "-at_install")
class TestTokenRefreshCommitted(SageSandboxCase):
    """A committed connection used from several real transactions at once.

    Each test commits a connection of the main company through its own
    cursor and deletes it afterwards.
    """

    def setUp(self):
        super().setUp()
        self.registry_ = self.env.registry
        self.company = self.env.ref("base.main_company")
        self._delete_committed_connections()
        token = self.sandbox.issue_tokens(TEST_CLIENT_ID, user_id=self.sage_user_id)
        token = dict(
            token,
            expires_at=time.time() + token["expires_in"],
            refresh_token_expires_at=time.time() + token["refresh_token_expires_in"],
        )
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            connection = env["sage.connection"].create(
                {
                    "company_id": self.company.id,
                    "api_url": self.sandbox.api_url,
                    "authorize_url": self.sandbox.authorize_url,
                    "token_url": self.sandbox.token_url,
                    "revoke_url": self.sandbox.revoke_url,
                    "client_id": TEST_CLIENT_ID,
                    "client_secret": TEST_CLIENT_SECRET,
                    "business_id": self.sage_business_id,
                    "business_name": "Test Trading Ltd",
                    "state": "connected",
                }
            )
            connection._sage_store_token(token)
            self.connection_id = connection.id
        self.addCleanup(self._delete_committed_connections)

    def _cursor(self):
        """A real transaction that fails instead of hanging on the test's own locks."""
        cr = self.registry_.cursor()
        cr.execute("SET lock_timeout = '10s'")
        return cr

    def _delete_committed_connections(self):
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            env["sage.connection"].search(
                [("company_id", "=", self.company.id), ("api_url", "like", "http://127.0.0.1")]
            ).unlink()

    def _read(self, field_names=("access_token", "refresh_token", "state")):
        with self.registry_.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            connection = env["sage.connection"].browse(self.connection_id)
            return {name: connection[name] for name in field_names}

    def _expire_committed(self):
        with self._cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            _expire(env["sage.connection"].browse(self.connection_id))
        self.sandbox.expire_access_tokens()

    def _token_requests(self):
        return self.sandbox.stats()["by_route"].get(TOKEN_ROUTE, 0)

    def _works(self, access_token):
        client = SageClient(
            self.sandbox.api_url, access_token=access_token, business_id=self.sage_business_id
        )
        return bool(client.get_financial_settings())

    def test_two_transactions_refresh_once_and_share_the_result(self):
        self._expire_committed()
        before = self._token_requests()
        # Slow token endpoint: the second worker waits for the first one's lock.
        self.sandbox.set_faults(latency=0.5)
        self.addCleanup(self.sandbox.set_faults, latency=0.0)
        barrier = threading.Barrier(2)
        results, errors = {}, {}

        def worker(name):
            try:
                with self.registry_.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
                    connection = env["sage.connection"].browse(self.connection_id)
                    # Take the transaction's snapshot before the other one commits,
                    # like a request that already ran queries.
                    self.assertEqual(connection.state, "connected")
                    barrier.wait(timeout=10)
                    results[name] = connection._sage_access_token()
            except Exception as error:  # reported by the assertions below
                errors[name] = error

        threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
        # The test runner holds the registry lock for the whole run; environments
        # created in other threads would wait for it forever.
        with patch.object(Registry, "_lock", threading.RLock()):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        self.assertFalse([thread for thread in threads if thread.is_alive()])
        self.assertFalse(errors)
        self.assertEqual(self._token_requests() - before, 1, "Sage saw a single refresh")
        self.assertEqual(results["a"], results["b"], "the second worker reused the first's token")
        stored = self._read()
        self.assertEqual(stored["access_token"], results["a"])
        self.assertTrue(self._works(results["a"]))
        self.assertTrue(self.sandbox.state.refresh_tokens[stored["refresh_token"]]["active"])

    def test_rolled_back_caller_does_not_lose_the_rotated_token(self):
        old = self._read()
        self._expire_committed()
        cr = self.registry_.cursor()
        try:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            token = env["sage.connection"].browse(self.connection_id)._sage_access_token()
            cr.rollback()
        finally:
            cr.close()
        stored = self._read()
        self.assertEqual(stored["access_token"], token)
        self.assertNotEqual(stored["refresh_token"], old["refresh_token"])
        self.assertFalse(self.sandbox.state.refresh_tokens[old["refresh_token"]]["active"])
        self.assertTrue(self.sandbox.state.refresh_tokens[stored["refresh_token"]]["active"])

    def test_caller_may_write_the_connection_after_a_refresh(self):
        """A refresh committed aside does not make the caller's own writes fail
        (REPEATABLE READ would refuse an update of a row changed meanwhile)."""
        self._expire_committed()
        with self.registry_.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            connection = env["sage.connection"].browse(self.connection_id)
            self.assertEqual(connection.default_due_days, 30)
            connection._sage_client().get_financial_settings()
            connection.write({"default_due_days": 45, "last_reference_sync": fields.Datetime.now()})
            env.flush_all()
        self.assertEqual(self._read(("default_due_days",))["default_due_days"], 45)

    def test_needs_reconnect_survives_the_caller_rollback(self):
        old = self._read()
        self.sandbox.state.refresh_tokens[old["refresh_token"]]["active"] = False
        self._expire_committed()
        cr = self.registry_.cursor()
        try:
            env = api.Environment(cr, SUPERUSER_ID, QUIET_CONTEXT)
            with self.assertRaises(SageReauthorizationRequired):
                env["sage.connection"].browse(self.connection_id)._sage_access_token()
            cr.rollback()
        finally:
            cr.close()
        self.assertEqual(self._read()["state"], "needs_reconnect")
        with self.registry_.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            activities = env["mail.activity"].search(
                [("res_model", "=", "sage.connection"), ("res_id", "=", self.connection_id)]
            )
            self.assertIn(env.ref("base.user_admin"), activities.user_id)
