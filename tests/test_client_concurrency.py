"""Pure tests: SageClient used from several threads (token refresh races, call counter)."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest
import responses

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import SageClient, SageOAuth

API = "https://api.sage.test/v3.1"
TOKEN_URL = "https://oauth.sage.test/token"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class FakeSageTokens:
    """Token endpoint + API auth with single-use, rotating refresh tokens."""

    def __init__(self):
        self.lock = threading.Lock()
        self.valid_access = {"A1"}
        self.valid_refresh = {"R1"}
        self.generation = 1
        self.token_calls = 0

    def token_endpoint(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        with self.lock:
            self.token_calls += 1
            if form.get("refresh_token") not in self.valid_refresh:
                return 400, {}, json.dumps({"error": "invalid_grant"})
            self.valid_refresh.discard(form["refresh_token"])  # single use
            self.generation += 1
            access, refresh = f"A{self.generation}", f"R{self.generation}"
            self.valid_access = {access}
            self.valid_refresh.add(refresh)
        body = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 300,
            "refresh_token_expires_in": 2678400,
            "token_type": "bearer",
            "scope": "full_access",
        }
        return 200, {}, json.dumps(body)

    def api(self, barrier=None):
        def callback(request):
            token = request.headers["Authorization"].split(" ", 1)[1]
            with self.lock:
                ok = token in self.valid_access
            if not ok:
                if barrier is not None:
                    try:
                        barrier.wait(timeout=5)  # both workers hold a refused token
                    except threading.BrokenBarrierError:
                        pass
                return 401, {}, json.dumps([{"$message": "expired"}])
            return 200, {"x-request-id": "ok"}, json.dumps({"id": "u"})

        return callback


def expire_first_access_token(sage):
    with sage.lock:
        sage.valid_access = set()


def test_two_threads_one_client_refresh_once(rsps):
    """Two threads of one client get a 401 at the same time: one refresh only,
    the second thread reuses the token the first one obtained."""
    sage = FakeSageTokens()
    expire_first_access_token(sage)
    barrier = threading.Barrier(2)
    rsps.add_callback(responses.GET, API + "/user", callback=sage.api(barrier))
    refreshes = []

    def refresh():
        refreshes.append(threading.get_ident())
        with sage.lock:
            sage.generation += 1
            sage.valid_access = {"NEW"}
        return "NEW"

    client = SageClient(API, access_token="A1", refresh=refresh, sleep=lambda s: None)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: client.get_user(), range(2)))
    assert results == [{"id": "u"}, {"id": "u"}]
    assert len(refreshes) == 1
    assert client.access_token == "NEW"
    assert client.calls == 4  # 2 refused + 2 retried


def test_two_workers_with_caller_side_lock_refresh_once(rsps):
    """Two workers (two clients, like two Odoo workers sharing one DB row) hit
    a 401 at once. The caller's refresh callback takes a lock (the row lock),
    re-reads the stored pair and only calls Sage when the refused token is
    still the stored one: the token endpoint is called once and both workers
    end up with the same new token."""
    sage = FakeSageTokens()
    expire_first_access_token(sage)
    rsps.add_callback(responses.POST, TOKEN_URL, callback=sage.token_endpoint)
    rsps.add_callback(responses.GET, API + "/user", callback=sage.api(threading.Barrier(2)))
    oauth = SageOAuth("cid", "secret", "https://odoo/cb", token_url=TOKEN_URL)
    row = {"access_token": "A1", "refresh_token": "R1"}
    row_lock = threading.Lock()

    def refresh(refused):
        with row_lock:  # SELECT ... FOR UPDATE
            if row["access_token"] != refused:
                return row["access_token"]  # another worker already refreshed
            pair = oauth.refresh(row["refresh_token"])
            row.update(pair)  # persist the rotated pair at once
            return pair["access_token"]

    workers = [
        SageClient(API, access_token="A1", refresh=refresh, sleep=lambda s: None) for _ in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: c.get_user(), workers))
    assert results == [{"id": "u"}, {"id": "u"}]
    assert sage.token_calls == 1
    assert row["refresh_token"] == "R2"
    assert [w.access_token for w in workers] == ["A2", "A2"]


def test_without_caller_lock_second_refresh_fails(rsps):
    """Shows why the caller-side lock matters: refreshing the same single-use
    refresh token twice makes Sage answer invalid_grant for the second one."""
    from sage_api import SageReauthorizationRequired

    sage = FakeSageTokens()
    rsps.add_callback(responses.POST, TOKEN_URL, callback=sage.token_endpoint)
    oauth = SageOAuth("cid", "secret", "https://odoo/cb", token_url=TOKEN_URL)
    oauth.refresh("R1")
    with pytest.raises(SageReauthorizationRequired):
        oauth.refresh("R1")


def test_call_counter_is_thread_safe(rsps):
    rsps.add(responses.GET, API + "/user", json={"id": "u"})
    client = SageClient(API, access_token="t")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.get_user(), range(200)))
    assert client.calls == 200
    client.close()
