"""Sending chunks of prepared documents to Sage concurrently (pure Python, HTTP only).

The Push-all runner prepares a chunk of documents in Odoo (main thread: checks,
contacts, payloads, idempotency ids, committed), then hands the jobs to
:class:`ConcurrentSender`, which runs :func:`.push.send_document` for each of
them in a pool of ``max_workers`` threads. Sage answers many requests of one
app at once, and a serial pusher spends nearly all its time waiting for the
network. :meth:`ConcurrentSender.submit` returns at once, so the runner can
prepare the next chunk (or apply the previous one) while this one is sent;
all chunks share the one pool, so no more than ``max_workers`` requests are
ever in flight.

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
from .exceptions import SageAuthError, SageError
from .push import ERROR, PushResult, send_document

__all__ = ["ConcurrentSender", "PrefetchedContactSearches", "TokenRefusedDuringBatch"]

_logger = logging.getLogger(__name__)


class TokenRefusedDuringBatch(SageAuthError):
    """Sage refused the access token while a chunk was being sent.

    Raised by the sender's refresh callback inside a worker thread, so that
    the document fails at once (nothing was created: Sage answered 401); the
    runner renews the token in its main thread and sends the document again.
    """

    default_message = "The Sage access token expired while the batch was being sent"


class SendHandle:
    """The chunk submitted by :meth:`ConcurrentSender.submit`; :meth:`wait` for it."""

    def __init__(self, sender, jobs, futures):
        self._sender = sender
        self.jobs = jobs
        self._futures = futures

    def done(self):
        return all(future.done() for future in self._futures)

    def wait(self):
        """``(results, token_refused)``: a PushResult per job, in job order, and the
        move ids whose send stopped because Sage refused the access token."""
        results = [future.result() for future in self._futures]
        return results, self._sender._take_refused(job.move_id for job in self.jobs)


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
        self._pool = None
        self.client = SageClient(
            api_url,
            access_token=access_token,
            refresh=self._refuse_to_refresh,
            business_id=business_id,
            **client_options,
        )

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
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

    def _executor(self):
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="sage-push"
            )
        return self._pool

    def submit(self, jobs):
        """Start sending ``jobs`` (``PreparedPush``); return a :class:`SendHandle`."""
        jobs = list(jobs)
        pool = self._executor()
        return SendHandle(self, jobs, [pool.submit(self._send_one, job) for job in jobs])

    def send(self, jobs):
        """Send ``jobs`` and wait: ``(results, token_refused)``, see :meth:`SendHandle.wait`.

        Never raises for Sage or network errors.
        """
        return self.submit(jobs).wait()

    def prefetch(self, calls):
        """Run ``calls`` (``{key: (function, args)}``, read-only HTTP calls on
        :attr:`client`) concurrently; return ``{key: result}`` for those that
        succeeded (the others are left to the caller to make again)."""
        pool = self._executor()
        futures = {key: pool.submit(function, *args) for key, (function, args) in calls.items()}
        results = {}
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except SageError as error:
                _logger.info("Sage prefetch %s failed, left to the caller: %s", key, error)
        self._take_refused([None])
        return results

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

    def _take_refused(self, move_ids):
        with self._lock:
            refused = self._token_refused.intersection(move_ids)
            self._token_refused -= refused
        return refused

    def _refuse_to_refresh(self, refused_token):
        """Refresh callback of the worker threads' client: never refresh here."""
        del refused_token  # the main thread compares tokens when it renews
        move_id = getattr(self._local, "move_id", None)
        with self._lock:
            self._token_refused.add(move_id)
        raise TokenRefusedDuringBatch(status=401)


class PrefetchedContactSearches:
    """A SageClient whose contact searches were made beforehand, concurrently.

    ``searches`` maps an email to the answer of ``find_contacts_by_email``
    obtained moments ago. Each answer is used once; every other call goes to
    ``client``. The caller's logic (which email, what a match is, when to
    create a contact) is unchanged: only the waiting is done in parallel.
    """

    def __init__(self, client, searches):
        self._client = client
        self._searches = dict(searches)

    def find_contacts_by_email(self, email, *args, **kwargs):
        if not args and not kwargs and email in self._searches:
            return self._searches.pop(email)
        return self._client.find_contacts_by_email(email, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)
