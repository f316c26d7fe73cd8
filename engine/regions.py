"""Firehose regions, read from botocore's bundled endpoint data (no network)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def _endpoint_resolver() -> Any:
    """botocore's endpoint data behind its resolver, read as a botocore session reads it
    (``AWS_DATA_PATH`` first), but without a session: a session dropped leaves its data in
    reference cycles, some 26,000 objects that only a full garbage collection frees, a
    40–100 ms stall of a console's screen in its first seconds; these are freed as soon as
    the lookup is done (README: "Performance")."""
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    loader = create_loader(os.environ.get("AWS_DATA_PATH"))
    endpoints, path = loader.load_data_with_path("endpoints")
    return EndpointResolver(endpoints, uses_builtin_data=loader.is_builtin_path(path))


@cache
def firehose_regions() -> tuple[str, ...]:
    """Every region botocore knows Firehose to run in, sorted."""
    resolver = _endpoint_resolver()
    regions: set[str] = set()
    for partition in _PARTITIONS:
        # "firehose" is both the service's name and its endpoint prefix.
        regions.update(resolver.get_available_endpoints("firehose", partition))
    return tuple(sorted(regions))


def is_firehose_region(region: str) -> bool:
    return region in firehose_regions()


@cache
def partition_of(region: str) -> str:
    """The AWS partition of ``region`` (aws, aws-cn, aws-us-gov, …), from botocore's data."""
    return str(_endpoint_resolver().get_partition_for_region(region))
