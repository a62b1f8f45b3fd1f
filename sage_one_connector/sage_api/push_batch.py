"""Sending a chunk of prepared documents to Sage concurrently (pure Python, HTTP only).

The Push-all runner prepares a chunk of documents in Odoo (main thread: checks,
contacts, payloads, idempotency ids, committed), then calls
:meth:`ConcurrentSender.send`, which runs :func:`.push.send_document` for each
job in a thread pool and returns the results in job order. Sage answers many
requests of one app at once, and a serial pusher spends nearly all its time
waiting for the network.

Nothing here touches a database. In particular the threads never refresh the
access token (a refresh writes the new token pair to Odoo): when Sage refuses
the token, the job fails fast and its move id is reported in ``token_refused``.
The caller renews the token in its own thread (:meth:`renew_token`) and sends
those jobs again, which is safe because each job keeps its idempotency id:
Sage answers a repeated request with the document it already created.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from .client import SageClient
from .exceptions import SageAuthError
from .push import ERROR, PushResult, send_document

__all__ = ["ConcurrentSender", "TokenRefusedDuringBatch"]

_logger = logging.getLogger(__name__)


class TokenRefusedDuringBatch(SageAuthError):
    """Sage refused the access token while a chunk was being sent.

    Raised by the sender's refresh callback inside a worker thread, so that
    the document fails at once (nothing was created: Sage answered 401); the
    runner renews the token in its main thread and sends the document again.
    """

    default_message = "The Sage access token expired while the batch was being sent"


class ConcurrentSender:
    """Send prepared documents to one Sage business, ``max_workers`` at a time.

    :param api_url: the Sage API base URL
    :param access_token: a valid access token (the caller refreshes it first)
    :param business_id: the Sage business (``X-Business``)
    :param max_workers: how many requests may be in flight at once
    :param client_options: passed on to :class:`~.client.SageClient`
    """

    def __init__(self, api_url, *, access_token, business_id, max_workers, **client_options):
        self.max_workers = max(1, int(max_workers or 1))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._token_refused = set()
        self.client = SageClient(
            api_url,
            access_token=access_token,
            refresh=self._refuse_to_refresh,
            business_id=business_id,
            **client_options,
        )

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def access_token(self):
        return self.client.access_token

    def renew_token(self, access_token):
        """Use ``access_token`` from now on (obtained by the caller)."""
        self.client.set_access_token(access_token)

    def send(self, jobs):
        """Send ``jobs`` (``PreparedPush``) concurrently.

        Returns ``(results, token_refused)``: one ``PushResult`` per job, in
        the order of ``jobs``, and the set of move ids whose send stopped
        because Sage refused the access token (send them again after
        :meth:`renew_token`). Never raises for Sage or network errors.
        """
        jobs = list(jobs)
        with self._lock:
            self._token_refused = set()
        if not jobs:
            return [], set()
        workers = min(self.max_workers, len(jobs))
        if workers == 1:
            results = [self._send_one(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sage-push") as pool:
                results = list(pool.map(self._send_one, jobs))
        with self._lock:
            refused = set(self._token_refused)
        return results, refused

    def _send_one(self, job):
        self._local.move_id = job.move_id
        try:
            return send_document(self.client, job)
        except Exception as error:  # one document's bug must not lose the chunk's results
            _logger.exception("Unexpected error while sending move %s to Sage", job.move_id)
            # Not definitive: the next attempt reuses the idempotency id and looks first.
            return PushResult(
                job.move_id,
                job.operation,
                ERROR,
                error=f"Unexpected error while sending to Sage: {error}",
            )
        finally:
            self._local.move_id = None

    def _refuse_to_refresh(self, refused_token):
        """Refresh callback of the worker threads' client: never refresh here."""
        del refused_token  # the main thread compares tokens when it renews
        move_id = getattr(self._local, "move_id", None)
        with self._lock:
            self._token_refused.add(move_id)
        raise TokenRefusedDuringBatch(status=401)
