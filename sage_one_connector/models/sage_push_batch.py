"""Push all to Sage: a batch of documents pushed in the background.

The Push-all wizard queues documents in a batch (one line per document, the
moves go to *queued*) and triggers the runner cron. The runner processes one
chunk per call, each chunk being its own unit of work:

1. claim: up to ``chunk_size`` queued lines, their rows and their moves' rows
   locked ``FOR NO KEY UPDATE SKIP LOCKED`` (a document that another user or
   worker holds is skipped, not waited for);
2. prepare (ORM, this thread): ``_sage_prepare_push`` checks the documents,
   resolves each new customer's Sage contact once, builds the payloads and
   idempotency ids and puts the moves in *sending*; committed together with
   the lines' *sending* state;
3. send (HTTP only): ``send_document`` for every job, ``max_concurrency`` at a
   time, in a thread pool that never touches the ORM; meanwhile this thread
   prepares the next chunk and applies the previous one;
4. apply (ORM, this thread): ``_sage_apply_push_result`` per document, then
   the line's outcome (Sage number or error); committed.

Failures are parked on their line (and the move) and never retried by the
runner: a person fixes the cause and pushes again.

Crash recovery: while it works on a batch, a runner holds a PostgreSQL
advisory lock on a separate connection. The lock dies with the worker, so a
runner that obtains it knows no live worker is pushing the batch: lines left
in *sending* come from a worker that was killed. Their moves go back to
*queued* with their idempotency id, and ``_sage_build_job`` then looks each
one up in Sage before sending it again: every document ends in Sage once.
"""

import logging
import threading
import time
import zlib
from contextlib import contextmanager
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import mute_logger

from ..sage_api import push_batch
from ..sage_api.exceptions import SageError
from .account_move import SENDING_TIMEOUT

_logger = logging.getLogger(__name__)

CHUNK_SIZE = 100
# Chunks per runner call: the next chunk is prepared, and the previous one
# applied, while one is being sent.
PIPELINE_CHUNKS = 3
# A cron job (up to 10 runner calls) must end well within the server's real
# time limit for crons (limit_time_real, 120 s by default) or the worker is
# killed: past this budget the runner ends the job and triggers a new one.
JOB_TIME_BUDGET = 60
# Up to this many documents the completion notification lists each of them;
# above, it summarises and points to the batch.
NOTIFICATION_MAX_DOCUMENTS = 20
NOTIFICATION_MAX_FAILURES = 10
# Documents that someone else is sending right now are looked at again after this.
BLOCKED_RETRY_DELAY = timedelta(minutes=1)
# First key of the runner's advisory lock (the second is the batch id).
RUNNER_LOCK_KEY = zlib.crc32(b"sage.push.batch runner") & 0x7FFFFFFF

BATCH_STATES = [("queued", "Queued"), ("running", "Running"), ("done", "Done")]
LINE_STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("error", "Error"),
    ("uncertain", "Uncertain"),
    ("conflict", "Conflict"),
]
OPEN_LINE_STATES = ("queued", "sending")
FAILED_LINE_STATES = ("error", "uncertain", "conflict")
# A background batch can wait out a burst of 429s and 5xx that an interactive
# click should not: with Sage refusing up to 40 % of calls, four retries park
# about one document in 400 as an error; ten park about one in 10^5.
BACKGROUND_MAX_RETRIES = 10
# Move states in which a push has ended, one way or the other.
FINAL_MOVE_STATES = ("sent", "error", "conflict", "uncertain")
# Fields of the move the runner reads after taking its lock.
MOVE_STATE_FIELDS = [
    "sage_state",
    "sage_id",
    "sage_number",
    "sage_last_error",
    "sage_attempts",
    "sage_sending_since",
]
QUIET_CONTEXT = {"mail_notrack": True}
_job_clock = threading.local()
# The runner only writes Sage fields on the moves: Odoo's invoice-line sync and
# balance check, which every account.move write runs (the sync even rewrites
# flags on each line), have nothing to do and would cost most of the Odoo time
# of a push.
PUSH_CONTEXT = {"skip_invoice_sync": True, "check_move_validity": False}
# No tracking message per document and state change: *sending* is the runner's
# claim on the document, and the outcome is logged on each document anyway
# ("Sent to Sage as ..." or the error) when it is applied.
PREPARE_CONTEXT = dict(PUSH_CONTEXT, mail_notrack=True)
# Applying: one commit per chunk instead of one per document (see _sage_commit).
APPLY_CONTEXT = dict(PUSH_CONTEXT, mail_notrack=True, sage_push_defer_commit=True)


class SagePushBatch(models.Model):
    _name = "sage.push.batch"
    _description = "Sage push batch"
    _order = "id desc"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        default=lambda self: self.env.company,
    )
    requester_id = fields.Many2one(
        "res.users", "Requested by", readonly=True, default=lambda self: self.env.user
    )
    requester_partner_id = fields.Many2one(
        "res.partner",
        "Notified partner",
        readonly=True,
        default=lambda self: self.env.user.partner_id,
        help="Receives the completion notification.",
    )
    state = fields.Selection(
        BATCH_STATES, default="queued", required=True, readonly=True, index=True
    )
    payment_types = fields.Char(
        "Payment types", readonly=True, help="The payment types chosen in the wizard."
    )
    line_ids = fields.One2many("sage.push.batch.line", "batch_id", "Documents", readonly=True)
    date_start = fields.Datetime("Started", readonly=True)
    date_done = fields.Datetime("Finished", readonly=True)
    summary = fields.Text(readonly=True, help="Each document with its Sage number or error.")

    total_count = fields.Integer("Number of documents", compute="_compute_counts")
    done_count = fields.Integer("Processed", compute="_compute_counts")
    sent_count = fields.Integer("Sent", compute="_compute_counts")
    failed_count = fields.Integer("Not sent", compute="_compute_counts")
    progress = fields.Float(compute="_compute_counts", help="Processed documents, in percent.")

    @api.depends("line_ids.state")
    def _compute_counts(self):
        counts = {}
        if self.ids:
            for batch, state, count in self.env["sage.push.batch.line"]._read_group(
                [("batch_id", "in", self.ids)], ["batch_id", "state"], ["__count"]
            ):
                counts.setdefault(batch.id, {})[state] = count
        for batch in self:
            by_state = counts.get(batch.id, {})
            total = sum(by_state.values())
            open_count = sum(by_state.get(state, 0) for state in OPEN_LINE_STATES)
            batch.total_count = total
            batch.done_count = total - open_count
            batch.sent_count = by_state.get("sent", 0)
            batch.failed_count = sum(by_state.get(state, 0) for state in FAILED_LINE_STATES)
            batch.progress = 100.0 * (total - open_count) / total if total else 0.0

    @api.depends("create_date")
    def _compute_display_name(self):
        for batch in self:
            batch.display_name = self.env._("Sage push #%(id)s", id=batch.id or "")

    # ------------------------------------------------------------------
    # Queueing (called by the wizard)
    # ------------------------------------------------------------------
    @api.model
    def _sage_queue(self, moves, payment_types_label):
        """Create a batch for ``moves`` (one company), queue them, wake the runner."""
        self.env["account.move"]._sage_check_push_all_rights()
        move_model = self.env["account.move"]
        labels = {}
        line_values = []
        for move in moves:
            key = move._sage_payment_type_key()
            if key not in labels:
                labels[key] = move_model._sage_payment_type_label(key)
            line_values.append({"move_id": move.id, "payment_type": labels[key]})
        batch = self.create(
            {
                "company_id": moves.company_id.id,
                "payment_types": payment_types_label,
                "line_ids": [fields.Command.create(values) for values in line_values],
            }
        )
        # The batch is the trail of the queueing: no tracking message per document.
        moves.with_context(**QUIET_CONTEXT, **PUSH_CONTEXT)._sage_write_sync(
            {"sage_state": "queued"}
        )
        self.env.ref("sage_one_connector.ir_cron_sage_push_batches")._trigger()
        return batch

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------
    def action_sage_run_now(self):
        """Wake the runner now (e.g. after documents were released by someone else)."""
        self.env["account.move"]._sage_check_push_all_rights()
        self.check_access("write")
        if all(batch.state == "done" for batch in self):
            raise UserError(self.env._("This batch is finished: there is nothing left to push."))
        self.env.ref("sage_one_connector.ir_cron_sage_push_batches")._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": self.env._("The documents left in the batch are being pushed."),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_sage_open_documents(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Documents of %(batch)s", batch=self.display_name),
            "res_model": "account.move",
            "view_mode": "list,form",
            "domain": [("id", "in", self.line_ids.move_id.ids)],
            "context": {"create": False},
        }

    # ------------------------------------------------------------------
    # Runner
    # ------------------------------------------------------------------
    @api.model
    def _cron_sage_push(self, chunk_size=CHUNK_SIZE):
        """Runner cron: up to ``PIPELINE_CHUNKS`` chunks of the oldest open batch per call.

        Reports to the cron framework how many documents this call finished
        and how many remain open, so that it calls again at once while work
        is progressing. Parked failures are finished (not remaining), and a
        call that could finish nothing (documents held by others) reports
        ``done=0``: the cron then waits for its next trigger instead of
        spinning. Returns the number of documents finished.
        """
        self._sage_job_elapsed()  # starts the clock at the job's first call
        done = 0
        for batch in self.search([("state", "!=", "done")], order="id"):
            with batch._sage_runner_lock() as acquired:
                if not acquired:
                    continue  # another worker is pushing this batch right now
                done = batch._sage_run(chunk_size)
            if done:
                break
        remaining = self.env["sage.push.batch.line"].search_count(
            [("batch_id.state", "!=", "done"), ("state", "in", OPEN_LINE_STATES)]
        )
        if done and remaining and self._sage_job_elapsed() > JOB_TIME_BUDGET:
            # End this cron job before the server's time limit; a new one follows at once.
            self.env.ref("sage_one_connector.ir_cron_sage_push_batches")._trigger()
            remaining = 0
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    def _sage_job_elapsed(self):
        """Seconds since the first runner call of the current cron job.

        The cron framework calls the runner up to 10 times in one job, all in
        the same transaction cursor; a new cursor means a new job.
        """
        cursor_key = id(self.env.cr)
        if getattr(_job_clock, "cursor_key", None) != cursor_key:
            _job_clock.cursor_key, _job_clock.started = cursor_key, time.monotonic()
        return time.monotonic() - _job_clock.started

    @contextmanager
    def _sage_runner_lock(self):
        """Yield True if no other live worker is pushing this batch.

        The advisory lock is taken on a separate connection and kept until the
        block ends, across the commits of the runner's own transaction; if the
        worker dies, PostgreSQL releases it with the connection.
        """
        self.ensure_one()
        cr = self.env.registry.cursor()
        try:
            cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (RUNNER_LOCK_KEY, self.id))
            yield cr.fetchone()[0]
        finally:
            cr.rollback()
            cr.close()

    def _sage_run(self, chunk_size=CHUNK_SIZE, chunks=None):
        """Push up to ``chunks`` chunks of this batch; return how many lines were finished.

        Call it only while holding :meth:`_sage_runner_lock`. While a chunk is
        being sent (threads, HTTP only), this thread prepares the next one and
        applies the previous one: the waiting for Sage and the ORM work overlap.
        """
        self.ensure_one()
        chunks = chunks or PIPELINE_CHUNKS
        if self.state == "queued":
            self.write({"state": "running", "date_start": fields.Datetime.now()})
        # A fresh transaction now that this worker holds the batch: one begun
        # before another worker's last commit could not lock the rows it changed.
        self.env["account.move"]._sage_commit()
        finished = self._sage_recover_interrupted()
        claimed = stale = False
        with _PushSession(self) as session:
            in_flight = None
            for _index in range(chunks):
                lines = self._sage_claim_lines(chunk_size)
                stale = lines is None
                sending = None
                if lines:
                    claimed = True
                    done, jobs = lines._sage_prepare_chunk(session)
                    finished += done
                    if jobs:
                        sending = (lines, session.sender.submit(jobs))
                if in_flight:
                    finished += session.complete(*in_flight)
                in_flight = sending
                if not lines:
                    break
            if in_flight:
                finished += session.complete(*in_flight)
        if not self.env["sage.push.batch.line"].search_count(
            [("batch_id", "=", self.id), ("state", "in", OPEN_LINE_STATES)], limit=1
        ):
            self._sage_finish()
        elif stale:
            self.env.ref("sage_one_connector.ir_cron_sage_push_batches")._trigger()
        elif not claimed:
            # Everything left is being sent by someone else: look again shortly.
            self.env.ref("sage_one_connector.ir_cron_sage_push_batches")._trigger(
                fields.Datetime.now() + BLOCKED_RETRY_DELAY
            )
        self.env["account.move"]._sage_commit()
        return finished

    def _sage_recover_interrupted(self):
        """Lines left in *sending* by a worker that died; return how many are finished."""
        self.ensure_one()
        lines = self.env["sage.push.batch.line"].search(
            [("batch_id", "=", self.id), ("state", "=", "sending")]
        )
        if not lines:
            return 0
        moves = lines.move_id.with_context(**PUSH_CONTEXT)._sage_lock_for_push(skip_locked=True)
        moves.invalidate_recordset(MOVE_STATE_FIELDS)
        finished = 0
        for line in lines:
            move = line.move_id
            if move not in moves:
                continue  # someone holds it right now: next time
            ours = move.sage_attempts == line.attempt
            if ours and move.sage_state == "sending":
                # Killed during the HTTP call: Sage may or may not have the document.
                # Queued again with its idempotency id, it is looked up in Sage first.
                _logger.info("Sage push %s: %s was interrupted, checking Sage", self.id, move.name)
                move.with_context(**PUSH_CONTEXT)._sage_write_sync({"sage_state": "queued"})
                line.state = "queued"
            elif ours and move.sage_state in FINAL_MOVE_STATES:
                line._sage_settle()  # the result was applied, only the line was not
                finished += 1
            else:
                line.state = "queued"  # handled elsewhere since: the claim looks again
        return finished

    def _sage_claim_lines(self, limit):
        """Lock up to ``limit`` queued lines and their moves; skip what others hold.

        Returns the lines, or None when this transaction is too old to lock
        them (the caller ends the call; the next one claims them).
        """
        self.ensure_one()
        self.env.flush_all()
        being_sent_since = fields.Datetime.now() - SENDING_TIMEOUT
        try:
            with mute_logger("odoo.sql_db"), self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    """
                    SELECT line.id
                      FROM sage_push_batch_line line
                      JOIN account_move move ON move.id = line.move_id
                     WHERE line.batch_id = %s
                       AND line.state = 'queued'
                       AND NOT (move.sage_state = 'sending'
                                AND (move.sage_sending_since IS NULL
                                     OR move.sage_sending_since > %s))
                     ORDER BY line.id
                     LIMIT %s
                       FOR NO KEY UPDATE OF line, move SKIP LOCKED
                    """,
                    (self.id, being_sent_since, limit),
                )
                line_ids = [row[0] for row in self.env.cr.fetchall()]
        except psycopg2.errors.SerializationFailure:
            # Someone changed one of these rows after this transaction began
            # (Odoo's transactions are REPEATABLE READ): a new one will see it.
            _logger.info("Sage push %s: documents changed meanwhile, claiming again later", self.id)
            return None
        lines = self.env["sage.push.batch.line"].browse(line_ids)
        lines.invalidate_recordset(["state", "attempt"])
        lines.move_id.invalidate_recordset(MOVE_STATE_FIELDS)
        return lines

    def _sage_finish(self):
        """Mark the batch done, store its summary and notify the requester."""
        self.ensure_one()
        batch = self.with_context(lang=self.requester_id.lang or self.env.lang)
        lines = batch.line_ids.sorted("id")
        failed = lines.filtered(lambda line: line.state in FAILED_LINE_STATES)
        self.write(
            {
                "state": "done",
                "date_done": fields.Datetime.now(),
                "summary": batch._sage_summary(lines),
            }
        )
        if self.requester_partner_id:
            self.requester_partner_id._bus_send(
                "simple_notification",
                {
                    "type": "success"
                    if not failed
                    else ("warning" if len(failed) < len(lines) else "danger"),
                    "title": batch.env._("Invoice push complete"),
                    "message": batch._sage_notification_message(lines, failed),
                    "sticky": True,
                },
            )

    def _sage_headline(self, lines, failed):
        return self.env._(
            "%(batch)s: %(sent)s of %(total)s document(s) sent to Sage, %(failed)s not sent.",
            batch=self.display_name,
            sent=len(lines) - len(failed),
            total=len(lines),
            failed=len(failed),
        )

    def _sage_summary(self, lines):
        failed = lines.filtered(lambda line: line.state in FAILED_LINE_STATES)
        return "\n".join(
            [self._sage_headline(lines, failed)] + [line._sage_outcome_text() for line in lines]
        )

    def _sage_notification_message(self, lines, failed):
        headline = self._sage_headline(lines, failed)
        if len(lines) <= NOTIFICATION_MAX_DOCUMENTS:
            return "\n".join([headline] + [line._sage_outcome_text() for line in lines])
        parts = [headline]
        parts += [line._sage_outcome_text() for line in failed[:NOTIFICATION_MAX_FAILURES]]
        if len(failed) > NOTIFICATION_MAX_FAILURES:
            parts.append(
                self.env._(
                    "… and %(count)s more not sent.", count=len(failed) - NOTIFICATION_MAX_FAILURES
                )
            )
        parts.append(
            self.env._(
                "Every document with its outcome: Invoicing > Sage > Push batches > %(batch)s "
                "(%(url)s).",
                batch=self.display_name,
                url=self._sage_url(),
            )
        )
        return "\n".join(parts)

    def _sage_connection_context(self, connection=None):
        """Context that gives the moves of this batch's company its connection at once."""
        self.ensure_one()
        connection = connection or self.env["sage.connection"]._for_company(
            self.company_id, raise_if_missing=False
        )
        if not connection:
            return {}
        return {
            "sage_push_connection_id": connection.id,
            "sage_push_company_id": self.company_id.id,
        }

    def _sage_url(self):
        base_url = self.get_base_url().rstrip("/")
        return f"{base_url}/odoo/action-sage_one_connector.sage_push_batch_action/{self.id}"


class SagePushBatchLine(models.Model):
    _name = "sage.push.batch.line"
    _description = "Document of a Sage push batch"
    _order = "batch_id desc, id"
    _check_company_auto = True

    batch_id = fields.Many2one(
        "sage.push.batch", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="batch_id.company_id", store=True, index=True)
    move_id = fields.Many2one(
        "account.move",
        "Document",
        required=True,
        ondelete="cascade",
        index=True,
        readonly=True,
        check_company=True,
    )
    partner_id = fields.Many2one(related="move_id.partner_id", string="Customer")
    currency_id = fields.Many2one(related="move_id.currency_id")
    amount_total = fields.Monetary(related="move_id.amount_total", currency_field="currency_id")
    payment_type = fields.Char(readonly=True)
    state = fields.Selection(
        LINE_STATES, default="queued", required=True, readonly=True, index=True
    )
    sage_number = fields.Char("Sage number", readonly=True)
    message = fields.Text(readonly=True, help="Why it was not sent, or a warning.")
    # The move's sage_attempts this batch's push of it will have: tells a worker
    # that died (the move still shows this attempt) from someone else's later push.
    attempt = fields.Integer(readonly=True)

    _sql_constraints = [
        ("move_batch_uniq", "UNIQUE(batch_id, move_id)", "A document is once in a batch."),
    ]

    def _sage_outcome_text(self):
        self.ensure_one()
        name = self.move_id.name or self.move_id.display_name
        if self.state == "sent":
            text = self.env._(
                "%(document)s → Sage %(number)s", document=name, number=self.sage_number
            )
            if self.message:
                text += f" ({self.message})"
            return text
        if self.state in OPEN_LINE_STATES:
            return self.env._("%(document)s: still queued", document=name)
        label = dict(self._fields["state"]._description_selection(self.env))[self.state]
        return f"{name}: {label} — {self.message or ''}".rstrip(" —")

    def _sage_settle(self):
        """Copy the outcome of each line's move (sent, error, conflict, uncertain)."""
        for line in self:
            move = line.move_id
            if move.sage_state == "sent" or move.sage_id:
                values = {
                    "state": "sent",
                    "sage_number": move.sage_number,
                    "message": move.sage_last_error or False,
                }
            elif move.sage_state in ("error", "conflict", "uncertain"):
                values = {
                    "state": move.sage_state,
                    "message": move.sage_last_error or line.env._("Not sent to Sage."),
                }
            else:
                values = {
                    "state": "error",
                    "message": line.env._("The push ended without a result; push it again."),
                }
            line.write(values)

    def _sage_park(self, message):
        """Record a failure that happened before anything was sent."""
        self.write({"state": "error", "message": message})
        moves = self.move_id.filtered(lambda move: move.sage_state in ("queued", "not_sent"))
        moves.with_context(**PUSH_CONTEXT)._sage_write_sync(
            {"sage_state": "error", "sage_last_error": message}
        )

    def _sage_prepare_chunk(self, session):
        """Steps 1-2 for these claimed lines: settle, check, prepare, commit.

        Returns ``(finished, jobs)``: how many lines were finished without
        sending (pushed meanwhile by someone else, or parked with a pre-flight
        problem) and the ``PreparedPush`` jobs to send.
        """
        batch = self.batch_id
        batch.ensure_one()
        finished = 0
        todo = self.browse()
        for line in self:
            move = line.move_id
            if move.sage_state in ("sent", "uncertain") or move.sage_id:
                line._sage_settle()  # pushed (or being checked) by someone else meanwhile
                finished += 1
            else:
                todo |= line
        if not todo:
            return finished, []
        problem = session.open(todo.move_id[:1])
        if problem:
            todo._sage_park(problem)
            return finished + len(todo), []

        moves = (
            todo.move_id.with_user(batch.requester_id or self.env.user)
            .with_company(batch.company_id)
            .with_context(**PREPARE_CONTEXT, **batch._sage_connection_context(session.connection))
        )
        # Claimed in the same transaction as the moves' *sending*: prepare commits both.
        for line in todo:
            line.write({"state": "sending", "attempt": line.move_id.sage_attempts + 1})
        try:
            jobs, problems = moves._sage_prepare_push(
                raise_on_problem=False, clients=session.clients(moves)
            )
        except (AccessError, UserError) as error:
            # Raised before anything was prepared: e.g. the requester lost the right.
            todo._sage_park(str(error))
            return finished + len(todo), []

        job_move_ids = {job.move_id for job in jobs}
        for line in todo:
            move = line.move_id
            if move.id in job_move_ids:
                continue
            messages = problems.get(move)
            if messages:
                line._sage_park("\n".join(messages))
                finished += 1
            else:
                line.state = "queued"  # not handled this time (another customer's contact failed)
        self.env["account.move"]._sage_commit()
        return finished, jobs

    def _sage_apply_results(self, results):
        """Step 4: write each result on its move and its line; commit the chunk."""
        batch = self.batch_id
        batch.ensure_one()
        Move = (
            self.env["account.move"]
            .with_user(batch.requester_id or self.env.user)
            .with_company(batch.company_id)
            .with_context(**APPLY_CONTEXT, **batch._sage_connection_context())
        )
        lines = {line.move_id.id: line for line in self}
        moves = Move.browse([result.move_id for result in results])
        for move, result in zip(moves, results):
            move._sage_apply_push_result(result)
            lines[result.move_id]._sage_settle()
        self.env["account.move"]._sage_commit()
        return len(results)


class _PushSession:
    """What one runner call shares between its chunks.

    The batch's connection, the main thread's Sage client (contact searches
    and creations, token refresh: ORM) and the sender's thread pool (HTTP
    only). Opened on the first chunk that has something to send.
    """

    def __init__(self, batch):
        self.batch = batch
        self.connection = batch.env["sage.connection"]._for_company(
            batch.company_id, raise_if_missing=False
        )
        self.main_client = None
        self.sender = None
        self.problem = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.sender is not None:
            self.sender.close()  # waits for requests still in flight

    def open(self, move):
        """Connect to Sage once; return why the documents cannot be sent, or None."""
        if self.sender is not None or self.problem:
            return self.problem
        self.problem = move._sage_connection_problem(self.connection)
        if self.problem:
            return self.problem
        try:
            self.main_client = self.connection._sage_build_client(
                self.connection._sage_access_token(), max_retries=BACKGROUND_MAX_RETRIES
            )
        except (UserError, SageError) as error:
            self.problem = str(error)
            return self.problem
        connection = self.connection.sudo()
        self.sender = push_batch.ConcurrentSender(
            connection.api_url,
            access_token=self.main_client.access_token,
            business_id=connection.business_id,
            max_workers=connection.max_concurrency,
            max_retries=BACKGROUND_MAX_RETRIES,
        )
        return None

    def clients(self, moves):
        """The ``clients`` argument of ``_sage_prepare_push`` for ``moves``.

        The contact searches of the customers not yet linked to Sage are made
        beforehand, concurrently (read-only); ``_sage_resolve_contacts`` then
        finds their answers instead of waiting for each one in turn.
        """
        emails = []
        seen = set()
        for move in moves:
            partner = move.commercial_partner_id
            if partner in seen:
                continue
            seen.add(partner)
            if not partner._sage_contact_link(self.connection):
                # The first address _sage_resolve_contacts tries for this customer.
                emails += move._sage_partner_emails()[:1]
        searches = {}
        if emails:
            find = self.sender.client.find_contacts_by_email
            searches = self.sender.prefetch({email: (find, (email,)) for email in emails})
        client = push_batch.PrefetchedContactSearches(self.main_client, searches)
        return {self.connection.id: client}

    def complete(self, lines, handle):
        """Wait for a chunk sent by :meth:`ConcurrentSender.submit` and apply it."""
        results, refused = handle.wait()
        if refused:
            # The token expired meanwhile: renew it here (ORM) and send those again
            # (same idempotency ids, so nothing can be created twice).
            try:
                token = self.connection._sage_refresh_access_token(
                    stale_token=self.sender.access_token
                )
            except (UserError, SageError) as error:
                _logger.warning("Sage push: could not renew the access token: %s", error)
            else:
                self.sender.renew_token(token)
                retried, _refused = self.sender.send(
                    [job for job in handle.jobs if job.move_id in refused]
                )
                by_move = {result.move_id: result for result in retried}
                results = [by_move.get(result.move_id, result) for result in results]
        return lines._sage_apply_results(results)
