"""One console session: the settings, the connection in use, its gateway, alerts and journals.

Both fronts (CLI and TUI) drive the engine through this facade, so they do the same verify,
preview and send. The embedded sandbox (and moto with it) is imported only when used.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.alerts import Alert, AlertBoard, alert_document
from engine.burst import send_messages
from engine.dead_letters import DeadLetter, DeadLetterJournal
from engine.delivery import Deliverer, DeliveryOutcome, RetryPolicy
from engine.events import EventSink, InterruptedRunRecovered, ignore_events
from engine.gateway import ClientHook, FirehoseGateway, GatewayConfig
from engine.outbox import Outbox
from engine.quotas import direct_put_quota
from engine.records import Action, OutgoingMessage, test_user_messages
from engine.records import burst_messages as build_burst_messages
from engine.settings import ConnectionSettings, Settings
from engine.settings_file import LoadedSettings
from engine.verification import VerificationReport, verify_connection

if TYPE_CHECKING:
    from engine.sandbox import DeliveredRecord, EmbeddedSandbox


@dataclass(frozen=True)
class SendReport:
    """The honest tally of a send: a record is delivered only when a RecordId came back."""

    requested: int
    outcomes: tuple[DeliveryOutcome, ...]
    alerts: tuple[Alert, ...] = field(default=())
    elapsed_seconds: float = 0.0

    @property
    def delivered(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.delivered)

    @property
    def skipped(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.skipped)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.delivered and not o.skipped)

    @property
    def dead_lettered(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.dead_lettered)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def document(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "records": [
                {
                    "message_id": o.message.message_id,
                    "kind": o.message.kind.value,
                    "record_id": o.record_id,
                    "attempts": o.attempts,
                    "latency_seconds": round(o.latency_seconds, 4),
                    "skip_reason": o.message.skip_reason if o.skipped else None,
                    "error": o.failure.describe() if o.failure else None,
                }
                for o in self.outcomes
            ],
            "alerts": [alert_document(alert) for alert in self.alerts],
        }


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
        alerts: AlertBoard | None = None,
    ) -> None:
        self.loaded = loaded
        self.settings: Settings = loaded.settings
        self.connection_name = self.settings.connection_name(connection_name)
        self.uses_sandbox = use_sandbox or not loaded.exists
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

                sandbox = EmbeddedSandbox(self.stream_name, self.connection.region)
                sandbox.start()
                self._sandbox = sandbox
            return self._sandbox

    def gateway(self) -> FirehoseGateway:
        with self._start_lock:
            if self._gateway is None:
                self._gateway = FirehoseGateway(
                    self._gateway_config(),
                    client_hooks=self._hooks(),
                    client_factory=self.sandbox().client if self.uses_sandbox else None,
                )
            return self._gateway

    def _gateway_config(self) -> GatewayConfig:
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
        return DeadLetterJournal.for_connection(self.settings.delivery, self._journal_name())

    def outbox(self) -> Outbox:
        """This connection's outbox, opened on first use; opening it recovers what an
        interrupted run left there (see ``recover_interrupted``)."""
        with self._outbox_lock:
            if self._outbox is None:
                outbox = Outbox.for_connection(
                    self.settings.delivery, self._journal_name(), self.connection_name
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
        """The SPEC §4 checklist against the connection's stream (nothing is sent)."""
        return verify_connection(
            self.gateway(),
            stream_name=self.stream_name,
            region=self.connection.region,
            settings_detail=self.describe_target(),
        )

    def preview(self, action: Action, *, draft: Settings | None = None) -> list[OutgoingMessage]:
        """The records ``action`` would send for the test user; nothing is sent.

        ``draft``: unsaved settings to build the records from (the console's form), as
        ``send`` does with the same draft.
        """
        return test_user_messages(
            self.settings if draft is None else draft,
            action,
            timestamp=int(self._clock()),
            connection_name=self.connection_name,
        )

    def burst_messages(
        self, action: Action, count: int, *, draft: Settings | None = None
    ) -> list[OutgoingMessage]:
        """The records of ``count`` repetitions of ``action`` (see records.burst_messages)."""
        return build_burst_messages(
            self.settings if draft is None else draft,
            action,
            count,
            timestamp=int(self._clock()),
            connection_name=self.connection_name,
        )

    def send(
        self,
        action: Action,
        *,
        count: int = 1,
        rate: float | None = None,
        batch: bool = False,
        draft: Settings | None = None,
    ) -> SendReport:
        """Send ``count`` repetitions of ``action`` and report what really arrived.

        ``draft``: unsaved settings to build the records from (README: "The console (TUI): a
        short tour"); the stream, credentials, delivery and chaos settings stay the session's.
        """
        messages = self.burst_messages(action, count, draft=draft)
        return self.send_messages(messages, rate=rate, batch=batch)

    def send_messages(
        self, messages: Sequence[OutgoingMessage], *, rate: float | None = None, batch: bool = False
    ) -> SendReport:
        deliverer = self.deliverer()  # may start the sandbox: not part of the send's time
        alerts_before = {alert.type: alert for alert in self.alerts.alerts()}
        started = time.monotonic()
        delivery = self.settings.delivery
        sendable = [message for message in messages if message.will_send]
        if len(sendable) > 1:  # all on record before the first goes out (one fsync)
            self.outbox().queue(sendable, datetime.now(UTC).isoformat())
        outcomes = send_messages(
            deliverer,
            messages,
            concurrency=delivery.concurrency,
            batch=batch,
            batch_size=delivery.batch_size,
            rate=rate,
            quota=direct_put_quota(self.connection.region),
            sink=self.sink,
            sleep=self._sleep,
        )
        return SendReport(
            requested=len(messages),
            outcomes=tuple(outcomes),
            # This send's alerts: those it raised or updated, not the session's older ones.
            alerts=tuple(a for a in self.alerts.alerts() if alerts_before.get(a.type) != a),
            elapsed_seconds=time.monotonic() - started,
        )

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter of this connection (an interrupted run's leftovers included)."""
        self.outbox()
        return self.dead_letter_journal().entries()

    def replay_dead_letters(self) -> SendReport:
        """Send every dead letter again, byte for byte; the delivered ones leave the journal."""
        self.outbox()  # an interrupted run's leftovers are replayed too
        journal = self.dead_letter_journal()
        letters = journal.entries()
        messages = [letter.to_message() for letter in letters]
        # Replayed messages that fail again are re-journaled under the same id (latest wins).
        report = self.send_messages(messages)
        journal.remove({o.message.message_id for o in report.outcomes if o.delivered})
        # A possible duplicate that failed again stays one: its first send may have arrived.
        possible = {letter.message_id for letter in letters if letter.possible_duplicate}
        journal.add_many(
            [
                replace(letter, possible_duplicate=True)
                for letter in journal.entries()
                if letter.message_id in possible and not letter.possible_duplicate
            ]
        )
        return report

    def delivered_records(self) -> list[DeliveredRecord]:
        """What reached the sandbox's S3 destination for this stream, newest first."""
        return self.sandbox().delivered_records(self.stream_name)

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
        self._gateway = None
