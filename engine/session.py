"""One console session: the settings, the connection in use, its gateway, alerts and journals.

Both fronts (CLI and TUI) drive the engine through this facade, so they do the same verify,
preview and send. The embedded sandbox (and moto with it) is imported only when used, and so
are the send path, the verification, the landed reader and the operator's clients: a front
that opens a session to show it (the console's first screen) needs none of them (README:
"Performance").
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence, Sized
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.alerts import Alert, AlertBoard, alert_document
from engine.events import EventSink, InterruptedRunRecovered, ignore_events
from engine.records import (
    Action,
    OutgoingMessage,
    burst_size,
    iter_burst_messages,
    messages_for_test_user,
)
from engine.records import burst_messages as build_burst_messages
from engine.regions import partition_of
from engine.settings import ALL_AUDIENCES, ConnectionSettings, Settings
from engine.settings_file import LoadedSettings

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from engine.dead_letters import DeadLetter, DeadLetterJournal
    from engine.delivery import Deliverer, DeliveryOutcome
    from engine.destination import Destination
    from engine.gateway import ClientHook, FirehoseGateway, GatewayConfig
    from engine.jsonl import Quarantined
    from engine.landed import LandedReader, LandedReport
    from engine.landed_journal import LandedJournal
    from engine.operator import OperatorClients
    from engine.outbox import Outbox
    from engine.sandbox import DeliveredRecord, EmbeddedSandbox
    from engine.verification import VerificationReport


# During a long send the landed journal is written when a chunk starts, at most once in this
# many seconds (and when the send ends): it keeps only the newest 1,000 entries, so a burst's
# writes mostly replace each other, and writing it for every chunk cost a tenth of a burst's
# time (README: "Where records land").
LANDED_JOURNAL_SECONDS = 5.0

# A report keeps the outcomes of this many messages at most (the first ones); its counts cover
# every message whatever the burst's size. ``send_messages(on_outcome=…)`` hears them all.
OUTCOMES_KEPT = 1_000


@dataclass(frozen=True)
class SendCounts:
    """What became of every message of a send, counted."""

    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    not_sent: int = 0  # never sent: the send was cancelled first (not failures)


class _Tally:
    """Counts outcomes as they come and keeps the first ``OUTCOMES_KEPT`` of them."""

    def __init__(self, keep: int = OUTCOMES_KEPT) -> None:
        self.kept: list[DeliveryOutcome] = []
        self._keep = keep
        self.seen = self.delivered = self.failed = self.skipped = 0
        self.dead_lettered = self.not_sent = 0

    def add(self, outcome: DeliveryOutcome) -> None:
        self.seen += 1
        if len(self.kept) < self._keep:
            self.kept.append(outcome)
        if outcome.delivered:
            self.delivered += 1
        elif outcome.skipped:
            self.skipped += 1
        elif outcome.not_sent:
            self.not_sent += 1
        else:
            self.failed += 1
        if outcome.dead_lettered:
            self.dead_lettered += 1

    def counts(self) -> SendCounts:
        return SendCounts(
            self.delivered, self.failed, self.skipped, self.dead_lettered, self.not_sent
        )


def outcome_document(outcome: DeliveryOutcome) -> dict[str, Any]:
    """One message's line in ``send --json``'s ``records``."""
    return {
        "message_id": outcome.message.message_id,
        "kind": outcome.message.kind.value,
        "record_id": outcome.record_id,
        "attempts": outcome.attempts,
        "latency_seconds": round(outcome.latency_seconds, 4),
        "skip_reason": outcome.message.skip_reason if outcome.skipped else None,
        "not_sent": outcome.not_sent,
        "error": outcome.failure.describe() if outcome.failure else None,
        "possible_duplicate": outcome.possible_duplicate,
    }


@dataclass(frozen=True)
class SendReport:
    """The honest tally of a send: a record is delivered only when a RecordId came back.

    ``outcomes`` holds every message's outcome for a send of up to ``OUTCOMES_KEPT`` messages,
    else the first ``OUTCOMES_KEPT`` (``outcomes_complete`` says which); the counts always
    cover every message (``counts``; without it they are counted from ``outcomes``).
    ``not_built`` messages of the burst were never built: the send was cancelled first.
    """

    requested: int
    outcomes: tuple[DeliveryOutcome, ...]
    alerts: tuple[Alert, ...] = field(default=())
    elapsed_seconds: float = 0.0
    counts: SendCounts | None = None
    not_built: int = 0

    def _counted(self) -> SendCounts:
        if self.counts is not None:
            return self.counts
        tally = _Tally(keep=0)
        for outcome in self.outcomes:
            tally.add(outcome)
        return tally.counts()

    @property
    def delivered(self) -> int:
        return self._counted().delivered

    @property
    def skipped(self) -> int:
        return self._counted().skipped

    @property
    def failed(self) -> int:
        return self._counted().failed

    @property
    def dead_lettered(self) -> int:
        return self._counted().dead_lettered

    @property
    def not_sent(self) -> int:
        """Never sent (the send was cancelled first), built or not: not failures."""
        return self._counted().not_sent + self.not_built

    @property
    def outcomes_complete(self) -> bool:
        return len(self.outcomes) == self.requested - self.not_built

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_sent == 0

    def summary(self) -> dict[str, Any]:
        """The document without its ``records`` (``send --json`` streams those)."""
        return {
            "requested": self.requested,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "not_sent": self.not_sent,
            "not_built": self.not_built,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "alerts": [alert_document(alert) for alert in self.alerts],
        }

    def document(self) -> dict[str, Any]:
        """Everything as JSON-ready data, ``records`` being the outcomes kept."""
        return {**self.summary(), "records": [outcome_document(o) for o in self.outcomes]}


class ConsoleSession:
    """Everything one run of the console works with. Call ``close`` when done."""

    def __init__(
        self,
        loaded: LoadedSettings,
        *,
        connection_name: str | None = None,
        use_sandbox: bool = False,
        sink: EventSink = ignore_events,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        audience_name: str | None = None,
        alerts: AlertBoard | None = None,
    ) -> None:
        self.loaded = loaded
        self.settings: Settings = loaded.settings
        self.connection_name = self.settings.connection_name(connection_name)
        # README: "The sandbox or AWS": --sandbox, no file yet, or the file's own choice.
        self.uses_sandbox = use_sandbox or not loaded.exists or loaded.settings.target == "sandbox"
        self.sink = sink
        # A renewed session (after a save) may carry its alerts on.
        self.alerts = alerts if alerts is not None else AlertBoard()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._sandbox: EmbeddedSandbox | None = None
        self._gateway: FirehoseGateway | None = None
        self._outbox: Outbox | None = None
        self._outbox_lock = threading.Lock()
        # Fronts call these from several worker threads: one sandbox, one gateway, ever.
        self._start_lock = threading.RLock()
        self._recovered: tuple[DeadLetter, ...] = ()
        self._quarantined: list[Quarantined] = []
        # The audience records are built for: a name among [audiences.NAME], "all", or None
        # for [audience] (README "CLI", --audience).
        self.audience_name = audience_name
        self._landed_reader: LandedReader | None = None
        self._operator: OperatorClients | None = None
        self._sandbox_operator_clients: dict[str, BaseClient] = {}
        self._sandbox_started_at: datetime | None = None

    # -- what is in use ------------------------------------------------------------------

    @property
    def connection(self) -> ConnectionSettings:
        return self.settings.connections[self.connection_name]

    @property
    def stream_name(self) -> str:
        return self.connection.delivery_stream_name

    def describe_target(self) -> str:
        where = "embedded sandbox" if self.uses_sandbox else (self.connection.endpoint_url or "AWS")
        return (
            f"connection {self.connection_name}: stream {self.stream_name} "
            f"in {self.connection.region} ({where})"
        )

    def sandbox(self) -> EmbeddedSandbox:
        """The embedded sandbox, started on first use (sandbox sessions only)."""
        if not self.uses_sandbox:
            raise RuntimeError("this session is not running on the embedded sandbox")
        with self._start_lock:
            if self._sandbox is None:
                from engine.sandbox import EmbeddedSandbox

                delivery = self.settings.delivery
                sandbox = EmbeddedSandbox(
                    self.stream_name,
                    self.connection.region,
                    # What `landed` may ask for, and the records of the calls in flight at once
                    # (their objects may be written out of order) (README: "The embedded sandbox").
                    bucket_keep_records=self.landed_journal().max_entries
                    + self.send_concurrency() * delivery.batch_size,
                )
                sandbox.start()
                self._sandbox = sandbox
                self._sandbox_started_at = datetime.now(UTC)
            return self._sandbox

    def send_concurrency(self) -> int:
        """Calls in flight at once during a send: ``delivery.concurrency``, but one against the
        embedded sandbox. Its server runs in this process, so concurrent calls only take turns
        on the interpreter lock: no faster, and a front's screen waits behind every call in
        flight (README: "The embedded sandbox")."""
        return 1 if self.uses_sandbox else self.settings.delivery.concurrency

    def gateway(self) -> FirehoseGateway:
        from engine.gateway import FirehoseGateway

        with self._start_lock:
            if self._gateway is None:
                self._gateway = FirehoseGateway(
                    self._gateway_config(),
                    client_hooks=self._hooks(),
                    client_factory=self.sandbox().client if self.uses_sandbox else None,
                )
            return self._gateway

    def _gateway_config(self) -> GatewayConfig:
        from engine.gateway import GatewayConfig

        delivery = self.settings.delivery
        common: dict[str, Any] = {
            "region": self.connection.region,
            "connect_timeout_seconds": delivery.connect_timeout_seconds,
            "read_timeout_seconds": delivery.read_timeout_seconds,
            "max_pool_connections": max(10, delivery.concurrency * 2),
        }
        if self.uses_sandbox:  # the sandbox's own clients: its endpoint and throwaway keys
            return GatewayConfig(**common)
        account = self.settings.account
        return GatewayConfig(
            endpoint_url=self.connection.endpoint_url,
            access_key_id=account.access_key_id,
            secret_access_key=account.secret_access_key,
            **common,
        )

    def _hooks(self) -> Sequence[ClientHook]:
        chaos = self.settings.sandbox
        if not self.uses_sandbox or chaos.failure_rate <= 0:
            return ()  # chaos never applies outside the sandbox
        from engine.chaos import ChaosPlan, install_chaos

        plan = ChaosPlan(chaos.failure_rate, tuple(chaos.failures), chaos.seed)
        rng = random.Random(chaos.seed) if chaos.seed is not None else None
        return (lambda client: install_chaos(client, plan, rng),)

    def _journal_name(self) -> str:
        # Sandbox runs keep their own journals, never mixed with a real stream's.
        return f"{self.connection_name}.sandbox" if self.uses_sandbox else self.connection_name

    def dead_letter_journal(self) -> DeadLetterJournal:
        from engine.dead_letters import DeadLetterJournal

        return DeadLetterJournal.for_connection(
            self.settings.delivery, self._journal_name(), on_quarantine=self._quarantined.append
        )

    def journal_warnings(self) -> list[Quarantined]:
        """Damaged journal lines this session moved to a quarantine file (each names the
        file and the count): fronts show them as warnings (README "Reliability")."""
        return list(self._quarantined)

    def outbox(self) -> Outbox:
        """This connection's outbox, opened on first use; opening it recovers what an
        interrupted run left there (see ``recover_interrupted``)."""
        from engine.outbox import Outbox

        with self._outbox_lock:
            if self._outbox is None:
                outbox = Outbox.for_connection(
                    self.settings.delivery,
                    self._journal_name(),
                    self.connection_name,
                    on_quarantine=self._quarantined.append,
                )
                journal = self.dead_letter_journal()
                self._recovered = tuple(outbox.open(journal, datetime.now(UTC).isoformat()))
                self._outbox = outbox
                if self._recovered:
                    self.sink(InterruptedRunRecovered(self._recovered, str(journal.path)))
            return self._outbox

    def recover_interrupted(self) -> list[DeadLetter]:
        """What an interrupted earlier run (crash, kill, power cut, Ctrl-C) left unsettled,
        now in the dead-letter journal so ``replay_dead_letters`` re-sends it.

        Letters with ``possible_duplicate`` (failure class ``UNKNOWN_FATE``) were sent but never
        answered: they may already be in the stream, and a replay may deliver them twice. The
        others (``INTERRUPTED_UNSENT``) were never sent. The session's first use of its journals
        (this call, a send, ``dead_letters`` or ``replay_dead_letters``) does the recovery;
        every call returns the same list. Empty when nothing was left, or while another console
        uses this connection (its messages may still be in flight; the first console to start
        alone recovers them).
        """
        self.outbox()
        return list(self._recovered)

    def deliverer(self) -> Deliverer:
        from engine.delivery import Deliverer, RetryPolicy

        return Deliverer(
            self.gateway(),
            RetryPolicy.from_settings(self.settings.delivery),
            connection_name=self.connection_name,
            alerts=self.alerts,
            sink=self.sink,
            dead_letters=self.dead_letter_journal(),
            outbox=self.outbox(),
            sleep=self._sleep,
            rng=self._rng,
        )

    # -- the actions ---------------------------------------------------------------------

    def verify(self) -> VerificationReport:
        """The README's "Verification" checklist against the connection's stream; sends nothing."""
        from engine.permissions import operator_checks
        from engine.verification import verify_connection

        return verify_connection(
            self.gateway(),
            stream_name=self.stream_name,
            region=self.connection.region,
            settings_detail=self.describe_target(),
            operator_checks=lambda keys_arn, stream_arn: operator_checks(
                self.operator_client, self.operator_description(), keys_arn, stream_arn
            ),
        )

    def preview(self, action: Action, *, draft: Settings | None = None) -> list[OutgoingMessage]:
        """The records ``action`` would send for the test user; nothing is sent.

        ``draft``: unsaved settings to build the records from (the console's form), as
        ``send`` does with the same draft.
        """
        return [
            message
            for settings in self._audience_settings(draft)
            for message in messages_for_test_user(
                settings,
                action,
                timestamp=int(self._clock()),
                connection_name=self.connection_name,
            )
        ]

    def burst_messages(
        self, action: Action, count: int, *, draft: Settings | None = None
    ) -> list[OutgoingMessage]:
        """The records of ``count`` repetitions of ``action`` (see records.burst_messages);
        with ``--audience all`` the count is shared out across the named audiences."""
        return [
            message
            for settings, share in self._audience_shares(count, draft)
            for message in build_burst_messages(
                settings,
                action,
                share,
                timestamp=int(self._clock()),
                connection_name=self.connection_name,
            )
        ]

    def _audience_shares(
        self, count: int, draft: Settings | None = None
    ) -> list[tuple[Settings, int]]:
        """``count`` shared out across the chosen audiences (the first ones get one more)."""
        audiences = self._audience_settings(draft)
        shares = [
            (settings, count // len(audiences) + (1 if index < count % len(audiences) else 0))
            for index, settings in enumerate(audiences)
        ]
        return [(settings, share) for settings, share in shares if share]

    def audience_names(self) -> list[str]:
        """The audiences records are built for: the chosen one, or every named one."""
        if self.audience_name == ALL_AUDIENCES:
            return list(self.settings.audiences) or [""]
        return [self.audience_name or ""]

    def _audience_settings(self, draft: Settings | None = None) -> list[Settings]:
        """The settings (the ``draft`` when given) with each chosen audience as ``[audience]``
        (records.py reads that)."""
        base = self.settings if draft is None else draft
        chosen = []
        for name in self.audience_names():
            if not name:
                chosen.append(base)
                continue
            audience = base.audience_named(name)
            chosen.append(base.model_copy(update={"audience": audience}))
        return chosen

    def burst_size(self, action: Action, count: int, *, draft: Settings | None = None) -> int:
        """How many records ``send(action, count=count)`` sends."""
        return sum(
            burst_size(settings, action, share)
            for settings, share in self._audience_shares(count, draft)
        )

    def send(
        self,
        action: Action,
        *,
        count: int = 1,
        rate: float | None = None,
        batch: bool = False,
        cancel: threading.Event | None = None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
        draft: Settings | None = None,
    ) -> SendReport:
        """Send ``count`` repetitions of ``action`` and report what really arrived. The burst
        is built as it is sent, chunk by chunk (see ``send_messages``).

        ``draft``: unsaved settings to build the records from; the stream, credentials,
        delivery and chaos settings stay the session's
        (README: "From a key to Firehose and back").
        """
        timestamp = int(self._clock())
        messages = itertools.chain.from_iterable(
            iter_burst_messages(
                settings, action, share, timestamp=timestamp, connection_name=self.connection_name
            )
            for settings, share in self._audience_shares(count, draft)
        )
        return self.send_messages(
            messages,
            rate=rate,
            batch=batch,
            cancel=cancel,
            on_outcome=on_outcome,
            requested=self.burst_size(action, count, draft=draft),
        )

    def send_messages(
        self,
        messages: Iterable[OutgoingMessage],
        *,
        rate: float | None = None,
        batch: bool = False,
        cancel: threading.Event | None = None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
        requested: int | None = None,
    ) -> SendReport:
        """Send ``messages`` (consumed lazily, a chunk at a time) and report what arrived.

        Each chunk is journaled in the outbox (one fsync) before any of it goes out.
        ``on_outcome`` hears every message's outcome, in order, as its chunk settles (the
        report keeps ``OUTCOMES_KEPT`` of them). Once ``cancel`` is set no new call starts;
        calls in flight finish; the rest is never sent (``SendReport.not_sent``; those built
        are dead-lettered as INTERRUPTED_UNSENT, so a replay sends them). ``requested`` is the
        number of messages planned, when ``messages`` has no length.
        """
        deliverer = self.deliverer()  # may start the sandbox: not part of the send's time
        deliverer.cancel = cancel
        alerts_before = {alert.type: alert for alert in self.alerts.alerts()}
        started = time.monotonic()
        sent_at = datetime.now(UTC)
        delivery = self.settings.delivery
        outbox = self.outbox()
        tally = _Tally()
        if requested is None and isinstance(messages, Sized):
            requested = len(messages)

        landed_journal = self.landed_journal()
        # Acknowledged records not yet in the landed journal: written when a chunk is journaled
        # once ``LANDED_JOURNAL_SECONDS`` passed since the last write, and at the end; only the
        # newest it keeps (it would trim the older ones at once).
        acknowledged: deque[DeliveryOutcome] = deque(maxlen=landed_journal.max_entries)

        landed_written = [time.monotonic()]

        def journal_acknowledged() -> None:
            if acknowledged:
                landed_journal.record(acknowledged, self.connection_name, sent_at=sent_at)
                acknowledged.clear()
            landed_written[0] = time.monotonic()

        def journal(chunk: Sequence[OutgoingMessage]) -> None:
            if time.monotonic() - landed_written[0] >= LANDED_JOURNAL_SECONDS:
                journal_acknowledged()  # the outcomes handed on so far
            sendable = [message for message in chunk if message.will_send]
            if len(sendable) > 1:  # all on record before the first goes out (one fsync)
                outbox.queue(sendable, datetime.now(UTC).isoformat())

        def settled(outcome: DeliveryOutcome) -> None:
            tally.add(outcome)
            if outcome.delivered:
                acknowledged.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        from engine.burst import stream_messages
        from engine.quotas import direct_put_quota

        region = self.connection.region
        consumed = stream_messages(
            deliverer,
            messages,
            settled,
            before_chunk=journal,
            concurrency=self.send_concurrency(),
            batch=batch,
            batch_size=delivery.batch_size,
            rate=rate,
            # One record cannot outrun a quota: it goes without any pacing machinery.
            quota=None if requested == 1 and rate is None else direct_put_quota(region),
            sink=self.sink,
            sleep=self._sleep,
            cancel=cancel,
        )
        journal_acknowledged()
        planned = max(requested or 0, consumed)
        return SendReport(
            requested=planned,
            outcomes=tuple(tally.kept),
            # This send's alerts: those it raised or updated, not the session's older ones.
            alerts=tuple(a for a in self.alerts.alerts() if alerts_before.get(a.type) != a),
            elapsed_seconds=time.monotonic() - started,
            counts=tally.counts(),
            not_built=planned - consumed,
        )

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter of this connection (an interrupted run's leftovers included)."""
        self.outbox()
        return self.dead_letter_journal().entries()

    def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The dead letter of ``message_id`` (or of a unique prefix of it); None if none."""
        self.outbox()
        return self.dead_letter_journal().find(message_id)

    def drop_dead_letters(self, message_ids: Collection[str] | None) -> list[DeadLetter]:
        """Remove letters for good: those of ``message_ids`` (unique prefixes will do), or
        every one when None. Raises ``UnknownDeadLetters`` (dropping nothing) when an id
        matches no letter, ``ReplayInProgress`` while a replay or drop holds the journal."""
        self.outbox()
        journal = self.dead_letter_journal()
        with journal.exclusive():
            letters = journal.entries()
            if message_ids is None:
                chosen = letters
            else:
                chosen = _chosen_letters(letters, message_ids, journal.path)
            journal.compact(drop={letter.message_id for letter in chosen})
        return chosen

    def replay_dead_letters(
        self, *, to_current: bool = False, message_ids: Collection[str] | None = None
    ) -> SendReport:
        """Send every dead letter again, byte for byte (to this connection's current stream
        with ``to_current``), or only those of ``message_ids`` (unique prefixes will do; the
        console's dead-letter browser replays one). Each letter Firehose acknowledges leaves
        the journal at once; the journal is compacted at the end (one line per letter left).
        Raises ``ReplayInProgress`` when another replay or drop holds the journal,
        ``UnknownDeadLetters`` (sending nothing) when an id matches no letter."""
        self.outbox()  # an interrupted run's leftovers are replayed too
        journal = self.dead_letter_journal()
        with journal.exclusive():
            letters = journal.entries()
            if message_ids is not None:
                letters = _chosen_letters(letters, message_ids, journal.path)
            if to_current:
                letters = [
                    letter.retargeted(self.stream_name, self.connection_name) for letter in letters
                ]
            self.outbox().replaying(letters)
            try:
                # Letters that fail again are re-journaled under the same id (latest wins; a
                # possible duplicate stays one).
                return self.send_messages([letter.to_message() for letter in letters])
            finally:
                journal.compact()

    def delivered_records(self) -> list[DeliveredRecord]:
        """What reached the sandbox's S3 destination for this stream, newest first."""
        return self.sandbox().delivered_records(self.stream_name)

    def newest_delivered_records(self, newest: int) -> tuple[list[DeliveredRecord], int]:
        """The newest ``newest`` records of ``delivered_records`` and how many there are."""
        return self.sandbox().newest_delivered_records(self.stream_name, newest)

    # -- where records land (README "Where records land") ---------------------------------

    def landed_journal(self) -> LandedJournal:
        from engine.landed_journal import LandedJournal

        return LandedJournal.for_connection(self.settings.delivery, self._journal_name())

    def operator_description(self) -> str:
        """Who reads the destination and runs the permission check."""
        if self.uses_sandbox:
            return "the embedded sandbox's own identity"
        from engine.operator import describe_operator

        return describe_operator(self.settings.operator)

    def operator_client(self, service: str) -> BaseClient:
        """A client as the operator: never the [account] keys, never used to send."""
        if self.uses_sandbox:
            return self._sandbox_operator_client(service)
        from engine.operator import OperatorClients

        with self._start_lock:
            if self._operator is None:
                self._operator = OperatorClients(
                    self.settings.operator,
                    region=self.connection.region,
                    endpoint_url=self.connection.endpoint_url,
                )
            return self._operator.client(service)

    def _sandbox_operator_client(self, service: str) -> BaseClient:
        """One client per service for the session's sandbox, kept: a client dropped after each
        verification is some thousands of objects in reference cycles for a full garbage
        collection to free, on the screen's time in a console (README: "Performance")."""
        from botocore.config import Config

        sandbox = self.sandbox()
        with self._start_lock:
            client = self._sandbox_operator_clients.get(service)
            if client is None:
                # One retry at most: an emulator's 500 for a call it lacks is not worth five.
                client = sandbox.client(service, Config(retries={"total_max_attempts": 2}))
                self._sandbox_operator_clients[service] = client
            return client

    def destination(self) -> Destination:
        """The stream's destination as ``landed`` reads it (DescribeDeliveryStream)."""
        from engine.destination import read_destination

        return read_destination(self.gateway().describe_stream(self.stream_name))

    def landed(self, *, last: int | None = None) -> LandedReport:
        """Where each journaled record of this connection is now: landed, waiting, missing,
        failed at the destination, or unconfirmed (and why)."""
        from engine.destination import undescribed_destination
        from engine.failures import classify
        from engine.landed import LandedReader
        from engine.operator import S3ObjectStore

        entries = self.landed_journal().entries(last=last)
        try:
            destination = self.destination()  # starts the sandbox, on a sandbox session
        except Exception as error:  # the report says why: every record unconfirmed
            destination = undescribed_destination(classify(error))
        forgotten = ""
        if self._sandbox_started_at is not None:
            # The sandbox's bucket lives as long as its process: earlier records are gone.
            started = self._sandbox_started_at
            kept = [entry for entry in entries if entry.acked_time >= started]
            if len(kept) < len(entries):
                forgotten = (
                    f"{len(entries) - len(kept)} record(s) sent to an earlier sandbox are not "
                    "checked: its bucket ended with it"
                )
            entries = kept
        with self._start_lock:
            if self._landed_reader is None:
                store = S3ObjectStore(self.operator_client("s3"))
                self._landed_reader = LandedReader(
                    store, partition=partition_of(self.connection.region)
                )
            reader = self._landed_reader
        report = reader.check(destination, entries)
        problem = "; ".join(filter(None, (report.problem, forgotten)))
        return replace(report, reader=self.operator_description(), problem=problem)

    def close(self) -> None:
        with self._start_lock:  # never while another thread is starting the sandbox
            self._close()

    def _close(self) -> None:
        with self._outbox_lock:
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None
        self._sandbox_operator_clients.clear()
        self._gateway = None


def _chosen_letters(
    letters: Sequence[DeadLetter], message_ids: Collection[str], journal: Path
) -> list[DeadLetter]:
    """The letters of ``message_ids`` (ids or unique prefixes), each once, in journal order;
    ``UnknownDeadLetters`` when any id matches no single letter."""
    from engine.dead_letters import UnknownDeadLetters, find_letter

    by_id = {letter.message_id: letter for letter in letters}
    found = {wanted: by_id.get(wanted) or find_letter(letters, wanted) for wanted in message_ids}
    unknown = [wanted for wanted, letter in found.items() if letter is None]
    if unknown:
        raise UnknownDeadLetters(unknown, journal)
    wanted_ids = {letter.message_id for letter in found.values() if letter is not None}
    return [letter for letter in letters if letter.message_id in wanted_ids]
