"""Firehose regions, read from botocore's bundled endpoint data (no network)."""

from __future__ import annotations

from functools import cache

_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@cache
def firehose_regions() -> tuple[str, ...]:
    """Every region botocore knows Firehose to run in, sorted."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in _PARTITIONS:
        regions.update(session.get_available_regions("firehose", partition_name=partition))
    return tuple(sorted(regions))


def is_firehose_region(region: str) -> bool:
    return region in firehose_regions()


@cache
def partition_of(region: str) -> str:
    """The AWS partition of ``region`` (aws, aws-cn, aws-us-gov, …), from botocore's data."""
    import botocore.session

    return str(botocore.session.get_session().get_partition_for_region(region))
