"""The one table of identities forwarded to Firehose (README: "Identities forwarded").

Each identity has a display name, the JSON key it takes in ``UserIdentities``, whether it is a
user or a device identity, the ``forward_*`` connection flag that governs it (if any), and whether
the seed page shows its key (``inferred=False``) or we derived it from the seed's PascalCase
pattern (``inferred=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IdentityKind(StrEnum):
    USER = "user"
    DEVICE = "device"


@dataclass(frozen=True)
class Identity:
    name: str
    json_key: str
    kind: IdentityKind
    forward_flag: str | None = None
    inferred: bool = True


_U, _D = IdentityKind.USER, IdentityKind.DEVICE

IDENTITIES: tuple[Identity, ...] = (
    Identity("Customer ID", "CustomerId", _U, "forward_customer_ids", inferred=False),
    Identity("Email Address", "Email", _U, "forward_email_addresses", inferred=False),
    Identity("Facebook ID", "FacebookId", _U, inferred=False),
    Identity("Google ID", "GoogleId", _U),
    Identity("Microsoft ID", "MicrosoftId", _U),
    Identity("mParticle ID (MPID)", "MPID", _U),
    Identity("Other", "Other", _U, inferred=False),
    *(Identity(f"Other {n}", f"Other{n}", _U, inferred=(n != 3)) for n in range(2, 11)),
    Identity("Twitter ID", "TwitterId", _U),
    Identity("Yahoo ID", "YahooId", _U),
    Identity("Android ID", "AndroidDeviceId", _D),
    Identity(
        "Google Advertising ID (GAID)",
        "GoogleAdvertisingIdentifier",
        _D,
        "forward_google_advertising_ids",
        inferred=False,
    ),
    Identity("Apple Advertising ID (IDFA)", "AppleAdvertisingIdentifier", _D, "forward_idfas"),
    Identity("Apple Vendor ID (IDFV)", "AppleVendorIdentifier", _D),
    Identity("Fire Advertising ID", "FireAdvertisingIdentifier", _D),
    Identity("Microsoft Advertising ID", "MicrosoftAdvertisingIdentifier", _D),
    Identity("Roku Advertising ID", "RokuAdvertisingIdentifier", _D),
    Identity("Roku Publisher ID", "RokuPublisherIdentifier", _D),
)

MPID_KEY = "MPID"

_BY_LOOKUP: dict[str, Identity] = {}
for _identity in IDENTITIES:
    for _alias in (_identity.name, _identity.json_key):
        _BY_LOOKUP[_alias.casefold()] = _identity
# Short forms users type: "IDFA", "GAID", "mParticle ID", "Other 3" spelled "Other3" is a key.
for _identity in IDENTITIES:
    if "(" in _identity.name:
        short = _identity.name[_identity.name.index("(") + 1 : _identity.name.index(")")]
        _BY_LOOKUP.setdefault(short.casefold(), _identity)
        _BY_LOOKUP.setdefault(_identity.name.split(" (")[0].casefold(), _identity)


def find_identity(name_or_key: str) -> Identity | None:
    """The identity named by a display name, JSON key or short form, case-insensitively."""
    return _BY_LOOKUP.get(name_or_key.strip().casefold())


def identity_by_key(json_key: str) -> Identity:
    """The identity with this exact JSON key; KeyError for an unknown key."""
    for identity in IDENTITIES:
        if identity.json_key == json_key:
            return identity
    raise KeyError(json_key)


FORWARD_FLAGS: tuple[str, ...] = tuple(i.forward_flag for i in IDENTITIES if i.forward_flag)
