"""The settings models: one source of truth for keys, types, defaults and rules.

README: "Settings".

Each field's ``description`` is what ``settings.example.toml`` says about it (see
``settings_template``); each validator's message names what is wrong and how to fix it.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.identities import MPID_KEY, find_identity
from engine.regions import firehose_regions, is_firehose_region

ENV_PREFIX = "FIREHOSE_CONSOLE_"
ENV_NESTED_DELIMITER = "__"
STREAM_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
RECORD_SIZE_LIMIT_BYTES = 1_024_000
# AudienceId travels as a JSON number; a signed 64-bit integer is what consumers can hold.
AUDIENCE_ID_MAX = 2**63 - 1
SANDBOX_FAILURES = ("throttling", "server-error", "timeout", "access-denied", "partial-batch")


def settings_problem(problem: str, fix: str) -> PydanticCustomError:
    """A validation error that carries its fix, so the message can name both."""
    return PydanticCustomError("settings_problem", problem, {"fix": fix})


def _means_a_number(annotation: Any) -> bool:
    """Whether a field's type is a number (int, float, or either or None)."""
    if annotation in (int, float):
        return True
    return any(arg in (int, float) for arg in get_args(annotation))


class _Section(BaseModel):
    # Inputs are left out of str(ValidationError): a front printing one cannot quote the secret.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    @field_validator("*", mode="before")
    @classmethod
    def _a_boolean_is_not_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1: `id = true` would quietly become audience 1.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _means_a_number(field.annotation):
            raise settings_problem(
                f"{str(value).lower()} is a boolean, not a number", "write a number, e.g. 5"
            )
        return value


class AccountSettings(_Section):
    """The IAM user upstream uses to put records."""

    access_key_id: str = Field(
        "",
        description="The IAM user's access key id. Empty: the standard AWS credential chain "
        "(environment, profile, instance role).",
    )
    secret_access_key: SecretStr = Field(
        SecretStr(""),
        description="The IAM user's secret access key. Never printed, logged or previewed. "
        "Prefer FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY in the environment.",
    )
    send_remove_on_identity_change: bool = Field(
        True,
        description="On an identity change, send IsMember=false with the old identities, then "
        "IsMember=true with the new ones. Off: only the IsMember=true message.",
    )

    @field_validator("access_key_id")
    @classmethod
    def _key_id_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[A-Z0-9]{16,128}", value):
            raise settings_problem(
                "an access key id is 16 or more capital letters and digits (like AKIA…)",
                "paste the Access key ID column of your IAM user's credentials.csv",
            )
        return value

    @model_validator(mode="after")
    def _secret_needs_key_id(self) -> AccountSettings:
        if self.secret_access_key.get_secret_value() and not self.access_key_id:
            raise settings_problem(
                "secret_access_key is set but access_key_id is empty",
                "set access_key_id too, or clear secret_access_key to use the AWS credential chain",
            )
        if self.access_key_id and not self.secret_access_key.get_secret_value():
            raise settings_problem(
                "access_key_id is set but secret_access_key is empty",
                "set secret_access_key (or FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY), "
                "or clear access_key_id to use the AWS credential chain",
            )
        return self


class ConnectionSettings(_Section):
    """One audience → delivery stream connection."""

    delivery_stream_name: str = Field(
        description="The Firehose delivery stream name: 1-64 characters of a-z A-Z 0-9 _ . -",
    )
    region: str = Field("us-east-1", description="The AWS region of the stream.")
    endpoint_url: str = Field(
        "", description="Optional custom Firehose endpoint, e.g. a local emulator. Empty: AWS."
    )
    send_anonymous_users: bool = Field(
        True, description="Send users identified only by their mParticle ID (MPID)."
    )
    forward_email_addresses: bool = Field(True, description="Forward Email.")
    forward_customer_ids: bool = Field(True, description="Forward CustomerId.")
    forward_idfas: bool = Field(True, description="Forward AppleAdvertisingIdentifier (IDFA).")
    forward_google_advertising_ids: bool = Field(
        True, description="Forward GoogleAdvertisingIdentifier (GAID)."
    )
    identities_to_exclude: list[str] = Field(
        default_factory=list,
        description="Identities never sent, by name or JSON key, case-insensitive "
        '(e.g. ["Other3", "Facebook ID"]).',
    )

    @field_validator("delivery_stream_name")
    @classmethod
    def _stream_name_rule(cls, value: str) -> str:
        if not STREAM_NAME_PATTERN.fullmatch(value):
            raise settings_problem(
                f"{value!r} is not a valid delivery stream name",
                "use 1 to 64 characters among a-z, A-Z, 0-9, '_', '.' and '-'",
            )
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        value = value.strip()
        if not is_firehose_region(value):
            raise settings_problem(
                f"{value!r} is not a region where Firehose runs",
                "use one of " + ", ".join(firehose_regions()),
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise settings_problem(
                f"{value!r} is not an http(s) URL",
                "write it like http://127.0.0.1:4566, or leave it empty for AWS",
            )
        return value

    @field_validator("identities_to_exclude")
    @classmethod
    def _known_identities(cls, values: list[str]) -> list[str]:
        for value in values:
            if find_identity(value) is None:
                raise settings_problem(
                    f"{value!r} is not an identity this integration forwards",
                    "use a name or JSON key from the identity table in the README "
                    "(e.g. CustomerId, Email, Other3, GoogleAdvertisingIdentifier)",
                )
        return values

    def excluded_keys(self) -> frozenset[str]:
        """The JSON keys named by ``identities_to_exclude``."""
        found = (find_identity(value) for value in self.identities_to_exclude)
        return frozenset(identity.json_key for identity in found if identity)


class AudienceSettings(_Section):
    """The test audience used by preview and send."""

    id: int = Field(
        123123,
        ge=0,
        le=AUDIENCE_ID_MAX,
        description="AudienceId: an integer from 0 to 2^63-1, immutable upstream.",
    )
    internal_name: str = Field("low_engagement", description="The audience's internal name.")
    external_name: str = Field(
        "LowEngagement",
        description="The external name; AudienceName uses it, or the internal name when empty.",
    )

    @property
    def audience_name(self) -> str:
        return self.external_name or self.internal_name

    @model_validator(mode="after")
    def _has_a_name(self) -> AudienceSettings:
        if not (self.external_name or self.internal_name):
            raise settings_problem(
                "the audience has neither an external nor an internal name",
                "set external_name (or internal_name) so AudienceName is not empty",
            )
        return self


OPERATOR_ROLE_ARN_PATTERN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"
)
AUDIENCE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALL_AUDIENCES = "all"


class OperatorSettings(_Section):
    """Who reads the destination and runs the permission check; never used to send."""

    profile: str = Field(
        "",
        description="The AWS profile (~/.aws/config) that reads the destination bucket and runs "
        "IAM's policy simulation. Empty: the standard AWS credential chain. Never used to send.",
    )
    role_arn: str = Field(
        "",
        description="Optional role the operator assumes first (arn:aws:iam::123456789012:role/"
        "NAME). Empty: the profile's (or the chain's) own identity.",
    )
    external_id: str = Field(
        "", description="The external id the role's trust policy asks for, if any."
    )

    @field_validator("profile", "role_arn", "external_id")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        return value.strip()

    @field_validator("role_arn")
    @classmethod
    def _role_arn_shape(cls, value: str) -> str:
        if value and not OPERATOR_ROLE_ARN_PATTERN.fullmatch(value):
            raise settings_problem(
                f"{value!r} is not an IAM role ARN",
                "write it like arn:aws:iam::123456789012:role/firehose-console-operator, "
                "or leave it empty",
            )
        return value

    @model_validator(mode="after")
    def _external_id_needs_role(self) -> OperatorSettings:
        if self.external_id and not self.role_arn:
            raise settings_problem(
                "external_id is set but role_arn is empty",
                "set role_arn to the role whose trust policy asks for this external id",
            )
        return self


def _canonical_identities(values: dict[str, str]) -> dict[str, str]:
    canonical: dict[str, str] = {}
    for key, value in values.items():
        identity = find_identity(key)
        if identity is None:
            raise settings_problem(
                f"{key!r} is not an identity key",
                "use a JSON key from the identity table in the README (e.g. CustomerId, Email)",
            )
        if identity.json_key == MPID_KEY:
            raise settings_problem(
                "the MPID goes in test_user.mpid, not among the identities",
                'move it to mpid = "…"',
            )
        canonical[identity.json_key] = str(value)
    return canonical


class TestUserSettings(_Section):
    """The test user; identities keyed by their JSON key (see the identity table)."""

    __test__ = False  # not a pytest test class, despite the name

    mpid: str = Field("8675309", description="The user's mParticle ID (sent as MPID).")
    identities: dict[str, str] = Field(
        default_factory=lambda: {
            "CustomerId": "p.fogg138",
            "Email": "phileas@travelers.com",
            "Other": "balloondude83",
            "Other3": "balloongal89",
            "FacebookId": "phileas83",
            "GoogleAdvertisingIdentifier": "phileas83",
        },
        description="The user's identities by JSON key.",
    )
    new_identities: dict[str, str] = Field(
        default_factory=lambda: {
            "CustomerId": "p.fogg138",
            "Email": "fogg@reform.club",
            "Other": "balloondude83",
            "Other3": "balloongal89",
            "FacebookId": "phileas83",
            "GoogleAdvertisingIdentifier": "phileas83",
        },
        description="The user's identities after an identity change (preview/send "
        "identity-change).",
    )

    @field_validator("identities", "new_identities")
    @classmethod
    def _identity_keys(cls, values: dict[str, str]) -> dict[str, str]:
        return _canonical_identities(values)


class DeliverySettings(_Section):
    """How records are sent and retried."""

    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per record, first included.")
    backoff_base_seconds: float = Field(
        0.2, gt=0, le=60, description="Exponential backoff base: attempt n waits up to base*2^n."
    )
    backoff_cap_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest wait between two attempts (full jitter below it)."
    )
    connect_timeout_seconds: float = Field(5.0, gt=0, le=120, description="TCP connect timeout.")
    read_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Response read timeout.")
    record_delimiter: str = Field(
        "\n",
        description="Appended to every record's JSON. Firehose concatenates records without a "
        'separator; "" sends the JSON alone.',
    )
    concurrency: int = Field(
        4, ge=1, le=64, description="Records in flight at once during a burst send."
    )
    batch_size: int = Field(
        500, ge=1, le=500, description="Records per PutRecordBatch call with --batch (max 500)."
    )
    state_dir: str = Field(
        "",
        description="Where the journals (outbox and dead letters) live. Empty: "
        "$XDG_STATE_HOME/firehose-console (~/.local/state/firehose-console).",
    )

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> DeliverySettings:
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise settings_problem(
                "backoff_cap_seconds is below backoff_base_seconds",
                "make the cap at least the base",
            )
        return self


class SandboxSettings(_Section):
    """The embedded sandbox's chaos: failures injected on purpose (never outside the sandbox)."""

    failure_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="0-1: the share of put calls that fail on purpose."
    )
    failures: list[str] = Field(
        default_factory=lambda: ["throttling", "server-error"],
        description="Kinds of failure to inject: " + ", ".join(SANDBOX_FAILURES) + ".",
    )
    seed: int | None = Field(None, description="Seed for the chaos dice; unset: random.")

    @field_validator("failures")
    @classmethod
    def _known_failures(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in SANDBOX_FAILURES:
                raise settings_problem(
                    f"{value!r} is not a sandbox failure kind",
                    "use any of " + ", ".join(SANDBOX_FAILURES),
                )
        return values


class Settings(BaseModel):
    """The whole settings file. Environment variables override it (``FIREHOSE_CONSOLE_…``):
    ``engine.settings_environment.settings_with_environment`` builds it with them."""

    # As pydantic-settings configures its models (defaults validated too), so that a Settings
    # validates alike with the environment's variables or without them.
    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        hide_input_in_errors=True,
        validate_default=True,
        arbitrary_types_allowed=True,
    )

    active_connection: str = Field(
        "", description="The connection used unless --connection says otherwise. Empty: the first."
    )
    target: Literal["aws", "sandbox"] = Field(
        "aws",
        description='Where sends go: "aws" (each connection\'s region, or its endpoint_url) or '
        '"sandbox" (the embedded sandbox, in-process: nothing leaves this machine). '
        "--sandbox overrides it for one run; with no settings file the sandbox runs.",
    )
    account: AccountSettings = Field(default_factory=AccountSettings)
    connections: dict[str, ConnectionSettings] = Field(
        default_factory=lambda: {
            "travel": ConnectionSettings(delivery_stream_name="mPTravelAudiences")
        },
        description="One table per connection: [connections.NAME].",
    )
    audience: AudienceSettings = Field(default_factory=AudienceSettings)
    audiences: dict[str, AudienceSettings] = Field(
        default_factory=dict,
        description="More test audiences on the same stream, one table each: [audiences.NAME]; "
        "chosen with --audience NAME (or all). [audience] stays the default.",
    )
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    test_user: TestUserSettings = Field(default_factory=TestUserSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @field_validator("connections")
    @classmethod
    def _at_least_one(cls, value: dict[str, ConnectionSettings]) -> dict[str, ConnectionSettings]:
        if not value:
            raise settings_problem(
                "no connection is defined",
                'add a table like [connections.travel] with delivery_stream_name = "…"',
            )
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise settings_problem(
                    f"{name!r} is not a usable connection name",
                    "name connections with letters, digits, '_' and '-'",
                )
        return value

    @model_validator(mode="after")
    def _active_exists(self) -> Settings:
        if self.active_connection and self.active_connection not in self.connections:
            raise settings_problem(
                f"active_connection {self.active_connection!r} is not among the connections",
                "use one of " + ", ".join(self.connections),
            )
        return self

    @field_validator("audiences")
    @classmethod
    def _audience_names(cls, value: dict[str, AudienceSettings]) -> dict[str, AudienceSettings]:
        for name in value:
            if not AUDIENCE_NAME_PATTERN.fullmatch(name) or name == ALL_AUDIENCES:
                raise settings_problem(
                    f"{name!r} is not a usable audience name",
                    "name audiences with letters, digits, '_' and '-' ('all' is taken: "
                    "--audience all means every named audience)",
                )
        return value

    def audience_named(self, name: str | None = None) -> AudienceSettings:
        """The audience ``name`` among [audiences.NAME]; [audience] when ``name`` is empty.

        Raises KeyError for a name that is not defined.
        """
        if not name:
            return self.audience
        return self.audiences[name]

    def connection_name(self, chosen: str | None = None) -> str:
        """The connection in use: ``chosen``, else ``active_connection``, else the first."""
        name = chosen or self.active_connection or next(iter(self.connections))
        if name not in self.connections:
            raise KeyError(name)
        return name

    def to_document(self, *, secret: str) -> dict[str, Any]:
        """The settings as a TOML-ready document, with ``secret`` written as the secret."""
        document = self.model_dump(mode="json", exclude_defaults=False)
        document["account"]["secret_access_key"] = secret
        if not document["active_connection"]:
            del document["active_connection"]
        if not document["audiences"]:
            del document["audiences"]
        if document["sandbox"]["seed"] is None:
            del document["sandbox"]["seed"]
        return document
