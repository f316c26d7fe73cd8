"""Firehose regions, read from botocore's bundled endpoint data (no network)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_lookup_lock = threading.Lock()  # the form's worker and a verification may ask at once


@cache
def _endpoint_data() -> Any:
    """One botocore session for every lookup here, kept: each new session reads botocore's
    endpoint data again, some 26,000 small objects in reference cycles once it is dropped,
    which only a full garbage collection frees: a 40–100 ms stall of a console's screen in its
    first seconds (README: "Performance")."""
    import botocore.session

    return botocore.session.get_session()


@cache
def firehose_regions() -> tuple[str, ...]:
    """Every region botocore knows Firehose to run in, sorted."""
    regions: set[str] = set()
    with _lookup_lock:
        session = _endpoint_data()
        for partition in _PARTITIONS:
            regions.update(session.get_available_regions("firehose", partition_name=partition))
    return tuple(sorted(regions))


def is_firehose_region(region: str) -> bool:
    return region in firehose_regions()


@cache
def partition_of(region: str) -> str:
    """The AWS partition of ``region`` (aws, aws-cn, aws-us-gov, …), from botocore's data."""
    with _lookup_lock:
        return str(_endpoint_data().get_partition_for_region(region))
