"""Firehose's limits on putting records: the one table the burst defaults come from.

Source: the Amazon Data Firehose developer guide, "Amazon Data Firehose Quota"
(https://docs.aws.amazon.com/firehose/latest/dev/limits.html). With Direct PUT as the source,
each stream gets a combined quota for PutRecord and PutRecordBatch: 500,000 records/s, 2,000
requests/s and 5 MiB/s in US East (N. Virginia), US West (Oregon) and Europe (Ireland);
100,000 records/s, 1,000 requests/s and 1 MiB/s in the other regions. The three scale together
when AWS raises them for an account, so a user who has a raise passes ``--rate``.
PutRecordBatch takes at most 500 records and 4 MiB per call (a hard limit).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 4 * MIB


@dataclass(frozen=True)
class DirectPutQuota:
    """One stream's combined PutRecord + PutRecordBatch quota."""

    records_per_second: int
    requests_per_second: int
    bytes_per_second: int

    def describe(self) -> str:
        return (
            f"{self.records_per_second:,} records/s, {self.requests_per_second:,} requests/s, "
            f"{self.bytes_per_second / MIB:g} MiB/s"
        )


HIGHER_QUOTA = DirectPutQuota(500_000, 2_000, 5 * MIB)
STANDARD_QUOTA = DirectPutQuota(100_000, 1_000, 1 * MIB)

# Regions with the higher default quota; every other region gets STANDARD_QUOTA.
DIRECT_PUT_QUOTAS: dict[str, DirectPutQuota] = {
    "us-east-1": HIGHER_QUOTA,  # US East (N. Virginia)
    "us-west-2": HIGHER_QUOTA,  # US West (Oregon)
    "eu-west-1": HIGHER_QUOTA,  # Europe (Ireland)
}


def direct_put_quota(region: str) -> DirectPutQuota:
    """The default Direct PUT quota of a stream in ``region``."""
    return DIRECT_PUT_QUOTAS.get(region, STANDARD_QUOTA)
