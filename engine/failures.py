"""What can go wrong when talking to Firehose, and what each failure means.

README: "Delivery, retries and alerts".

The one table: each failure class says whether it is retried, which System Alert it raises and
how to fix it. ``classify`` turns any botocore exception or per-record error code into a Failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class AlertType(StrEnum):
    """The System Alerts, named as upstream's dashboard names them."""

    INTERNAL_SERVER_ERROR = "500 - Internal Server Error"
    RETRY_LIMIT_EXCEEDED = "Retry Limit Exceeded"
    REQUEST_TIMEOUT = "408 - Request Timeout"
    CONNECTION_FAILED = "Connection Failed"
    FORBIDDEN = "403 - Forbidden"
    NOT_FOUND = "404 - Not Found"
    BAD_REQUEST = "400 - Bad Request"
    PAYLOAD_TOO_LARGE = "413 - Payload Too Large"


@dataclass(frozen=True)
class FailureClassInfo:
    retryable: bool
    alert_type: AlertType | None  # None: the failure raises no alert of its own
    fix: str


class FailureClass(Enum):
    """Every kind of failure, with whether it is retried, its alert and its fix."""

    THROTTLED = FailureClassInfo(
        True,
        AlertType.INTERNAL_SERVER_ERROR,
        "Firehose is throttling: lower --rate, use --batch, or ask AWS for a limit increase",
    )
    SERVER_ERROR = FailureClassInfo(
        True, AlertType.INTERNAL_SERVER_ERROR, "a transient Firehose error: re-send later"
    )
    TIMEOUT = FailureClassInfo(
        True,
        AlertType.REQUEST_TIMEOUT,
        "no answer in time: check the network, or raise delivery.read_timeout_seconds",
    )
    CONNECTION = FailureClassInfo(
        True,
        AlertType.CONNECTION_FAILED,
        "the endpoint cannot be reached: check endpoint_url, region and the network",
    )
    CREDENTIALS = FailureClassInfo(
        False,
        AlertType.FORBIDDEN,
        "the keys are missing, wrong or expired: set access_key_id and secret_access_key",
    )
    ACCESS_DENIED = FailureClassInfo(
        False,
        AlertType.FORBIDDEN,
        "the IAM user lacks permission: attach the policy shown by `firehose-console verify`",
    )
    NOT_FOUND = FailureClassInfo(
        False,
        AlertType.NOT_FOUND,
        "no such stream in that region: check delivery_stream_name and region",
    )
    INVALID_REQUEST = FailureClassInfo(
        False, AlertType.BAD_REQUEST, "Firehose refused the request as invalid: see the sample"
    )
    KMS = FailureClassInfo(
        False,
        AlertType.BAD_REQUEST,
        "the stream's KMS key is unusable: enable it or grant Firehose access to it",
    )
    TOO_LARGE = FailureClassInfo(
        False,
        AlertType.PAYLOAD_TOO_LARGE,
        "the record is over 1,024,000 bytes: send fewer or shorter identities",
    )
    MALFORMED_ANSWER = FailureClassInfo(
        True,
        AlertType.INTERNAL_SERVER_ERROR,
        "the answer did not say whether the record arrived (no usable RecordId, a batch answer "
        "of the wrong length, an oversized body): it is re-sent and marked as a possible "
        "duplicate; if it persists, check what endpoint_url points at",
    )
    # Not a failure of this message: the one it follows (an identity change's remove) was not
    # delivered, so it was never sent (its predecessor's failure raised the alert).
    WAITING_FOR_PREDECESSOR = FailureClassInfo(
        False,
        None,
        "it waits for the message it follows (its remove): `dead-letters replay` sends both, "
        "in order",
    )

    @property
    def retryable(self) -> bool:
        return self.value.retryable

    @property
    def alert_type(self) -> AlertType | None:
        return self.value.alert_type

    @property
    def fix(self) -> str:
        return self.value.fix


_CODES: dict[str, FailureClass] = {
    "ServiceUnavailableException": FailureClass.THROTTLED,
    "ThrottlingException": FailureClass.THROTTLED,
    "Throttling": FailureClass.THROTTLED,
    "LimitExceededException": FailureClass.THROTTLED,
    "InternalFailure": FailureClass.SERVER_ERROR,
    "InternalServerError": FailureClass.SERVER_ERROR,
    "ServiceFailure": FailureClass.SERVER_ERROR,
    "UnrecognizedClientException": FailureClass.CREDENTIALS,
    "InvalidSignatureException": FailureClass.CREDENTIALS,
    "SignatureDoesNotMatch": FailureClass.CREDENTIALS,
    "ExpiredTokenException": FailureClass.CREDENTIALS,
    "ExpiredToken": FailureClass.CREDENTIALS,
    "InvalidClientTokenId": FailureClass.CREDENTIALS,
    "MissingAuthenticationToken": FailureClass.CREDENTIALS,
    "IncompleteSignature": FailureClass.CREDENTIALS,
    "AccessDeniedException": FailureClass.ACCESS_DENIED,
    "AccessDenied": FailureClass.ACCESS_DENIED,
    "ResourceNotFoundException": FailureClass.NOT_FOUND,
    "InvalidArgumentException": FailureClass.INVALID_REQUEST,
    "ValidationException": FailureClass.INVALID_REQUEST,
    "ResourceInUseException": FailureClass.INVALID_REQUEST,
    "SerializationException": FailureClass.INVALID_REQUEST,
    "InvalidSourceException": FailureClass.INVALID_REQUEST,
    "InvalidKMSResourceException": FailureClass.KMS,
    "KMSAccessDeniedException": FailureClass.KMS,
    "KMSDisabledException": FailureClass.KMS,
    "KMSNotFoundException": FailureClass.KMS,
    "KMSInvalidStateException": FailureClass.KMS,
    "RecordTooLarge": FailureClass.TOO_LARGE,
}


class MalformedAnswer(Exception):
    """An answer that cannot tell what became of the records sent (README, Reliability)."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: its class, the code and message that came back, the HTTP status.

    ``fate_unknown``: the request went out and no usable answer came back, so Firehose may
    have taken the record all the same; another attempt may deliver it twice.
    """

    failure_class: FailureClass
    code: str
    message: str
    http_status: int | None = None
    fate_unknown: bool = False

    @property
    def retryable(self) -> bool:
        return self.failure_class.retryable

    def describe(self) -> str:
        status = f"HTTP {self.http_status} " if self.http_status else ""
        return f"{status}{self.code}: {self.message}".strip()


def classify_code(code: str, message: str = "", http_status: int | None = None) -> Failure:
    """A Failure for an error code (from a response or a failed record inside a batch)."""
    failure_class = _CODES.get(code)
    if failure_class is None:
        is_server_side = http_status is None or http_status >= 500
        failure_class = (
            FailureClass.SERVER_ERROR if is_server_side else FailureClass.INVALID_REQUEST
        )
    return Failure(failure_class, code, message, http_status)


def classify(error: BaseException) -> Failure:
    """A Failure for any exception a Firehose or STS call raised."""
    # Here, not at the top: the table above is read at every start (alerts, the console's
    # panes), botocore only once a call has failed.
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotocoreConnectionError,
    )

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_code(details.get("Code", "Unknown"), details.get("Message", ""), status)
    name = type(error).__name__
    if isinstance(error, MalformedAnswer):
        return Failure(FailureClass.MALFORMED_ANSWER, name, str(error), fate_unknown=True)
    # The request was sent and its answer never came (whole): Firehose may have the record.
    answer_lost = isinstance(error, ReadTimeoutError | ConnectionClosedError)
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return Failure(FailureClass.TIMEOUT, name, str(error), fate_unknown=answer_lost)
    if isinstance(error, EndpointConnectionError | ConnectionClosedError | BotocoreConnectionError):
        return Failure(FailureClass.CONNECTION, name, str(error), fate_unknown=answer_lost)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Failure(FailureClass.CREDENTIALS, name, str(error))
    if isinstance(error, TimeoutError):
        return Failure(FailureClass.TIMEOUT, name, str(error) or "timed out")
    if isinstance(error, OSError):
        return Failure(FailureClass.CONNECTION, name, str(error))
    if isinstance(error, BotoCoreError):
        return Failure(FailureClass.INVALID_REQUEST, name, str(error))
    return Failure(FailureClass.SERVER_ERROR, name, str(error))
