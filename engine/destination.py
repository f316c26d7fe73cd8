"""Where a stream's records land, read from DescribeDeliveryStream (README "Where records land").

Pure: a stream description in, a ``Destination`` out, and the S3 key prefixes under which
Firehose would have written records that arrived in a time window. Firehose evaluates a custom
prefix's ``!{timestamp:…}`` expressions with the arrival time of the oldest record in the object
(UTC unless ``CustomTimeZone``); a prefix without expressions gets ``YYYY/MM/dd/HH/`` appended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.failures import Failure

READABLE_COMPRESSIONS = ("UNCOMPRESSED", "GZIP")
# S3 backup modes that copy every record (not only the failed ones) to S3.
ALL_DATA_BACKUP_MODES = ("AllData", "AllDocuments", "AllEvents", "Enabled")
# Firehose's error prefixes when ErrorOutputPrefix is empty.
DEFAULT_ERROR_ROOTS = ("processing-failed/", "format-conversion-failed/")
# Beyond this many hours of window the hour-by-hour listing gives way to the prefix's fixed part.
MAX_LISTED_HOURS = 72

_NON_S3_DESTINATIONS = {
    "HttpEndpointDestinationDescription": "HttpEndpoint",
    "RedshiftDestinationDescription": "Redshift",
    "ElasticsearchDestinationDescription": "Elasticsearch",
    "AmazonopensearchserviceDestinationDescription": "AmazonOpenSearchService",
    "AmazonOpenSearchServerlessDestinationDescription": "AmazonOpenSearchServerless",
    "SplunkDestinationDescription": "Splunk",
    "SnowflakeDestinationDescription": "Snowflake",
    "IcebergDestinationDescription": "Iceberg",
}
_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")


@dataclass(frozen=True)
class Destination:
    """What ``landed`` reads: the S3 copy of a stream's records, or why there is none."""

    type: str  # Firehose's name: ExtendedS3, S3, HttpEndpoint, Redshift, Splunk, …
    bucket: str = ""
    prefix: str = ""
    error_output_prefix: str = ""
    compression: str = "UNCOMPRESSED"
    buffering_interval_seconds: int = 300
    buffering_size_mib: int = 5
    readable: bool = True
    note: str = ""  # what can and cannot be confirmed, when not simply "the bucket"
    kms_key_arn: str = ""
    time_zone: str = "UTC"
    stream_name: str = ""  # Firehose names each object "<stream>-<version>-<time>-<random>"

    def written_by_stream(self, key: str) -> bool:
        """Whether the object ``key`` was written by this stream (others share buckets)."""
        if not self.stream_name:
            return True
        name = key.rsplit("/", 1)[-1]
        return re.match(rf"{re.escape(self.stream_name)}-\d+-", name) is not None

    def document(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "error_output_prefix": self.error_output_prefix,
            "compression": self.compression,
            "buffering_interval_seconds": self.buffering_interval_seconds,
            "buffering_size_mib": self.buffering_size_mib,
            "readable": self.readable,
            "note": self.note,
        }


def _bucket_name(bucket_arn: str) -> str:
    return bucket_arn.rsplit(":", 1)[-1]


def _from_s3_description(kind: str, body: dict[str, Any], note: str = "") -> Destination:
    hints = body.get("BufferingHints") or {}
    kms = (body.get("EncryptionConfiguration") or {}).get("KMSEncryptionConfig") or {}
    compression = body.get("CompressionFormat") or "UNCOMPRESSED"
    readable = compression in READABLE_COMPRESSIONS
    if not readable:
        note = (
            f"{compression} objects cannot be read back here: records cannot be confirmed "
            "(GZIP and uncompressed can)"
        )
    return Destination(
        type=kind,
        bucket=_bucket_name(body.get("BucketARN", "")),
        prefix=body.get("Prefix") or "",
        error_output_prefix=body.get("ErrorOutputPrefix") or "",
        compression=compression,
        buffering_interval_seconds=int(hints.get("IntervalInSeconds", 300)),
        buffering_size_mib=int(hints.get("SizeInMBs", 5)),
        readable=readable,
        note=note,
        kms_key_arn=kms.get("AWSKMSKeyARN", ""),
        time_zone=body.get("CustomTimeZone") or "UTC",
    )


def read_destination(description: dict[str, Any]) -> Destination:
    """The destination ``landed`` can read, from DescribeDeliveryStream's description."""
    found = _read_destination(description)
    return replace(found, stream_name=description.get("DeliveryStreamName", ""))


def undescribed_destination(failure: Failure) -> Destination:
    """The destination when DescribeDeliveryStream failed: unreadable, saying why and the fix."""
    return Destination(
        type="unknown",
        readable=False,
        note=f"the stream could not be described ({failure.describe()}): "
        f"{failure.failure_class.fix}",
    )


def _read_destination(description: dict[str, Any]) -> Destination:
    destinations = description.get("Destinations") or []
    if not destinations:
        return Destination(type="none", readable=False, note="the stream reports no destination")
    found = destinations[0]
    extended = found.get("ExtendedS3DestinationDescription")
    if extended is not None:
        return _extended_s3(extended)
    for key, kind in _NON_S3_DESTINATIONS.items():
        if key in found:
            return _without_s3_copy(kind, found[key])
    if "S3DestinationDescription" in found:
        return _from_s3_description("S3", found["S3DestinationDescription"])
    kinds = ", ".join(
        key.removesuffix("DestinationDescription") for key in found if key != "DestinationId"
    )
    return Destination(type=kinds or "unknown", readable=False, note="not a destination read here")


def _extended_s3(body: dict[str, Any]) -> Destination:
    conversion = (body.get("DataFormatConversionConfiguration") or {}).get("Enabled")
    backup = body.get("S3BackupDescription")
    if conversion:
        if body.get("S3BackupMode") == "Enabled" and backup:
            return _from_s3_description(
                "ExtendedS3",
                backup,
                "records are converted to Parquet/ORC, which cannot be read back here: "
                "the S3 backup of the source records is read instead",
            )
        return Destination(
            type="ExtendedS3",
            bucket=_bucket_name(body.get("BucketARN", "")),
            prefix=body.get("Prefix") or "",
            compression="PARQUET/ORC",
            readable=False,
            note="records are converted to Parquet/ORC, which cannot be read back here, and "
            "there is no S3 backup of the source records: landing cannot be confirmed",
        )
    destination = _from_s3_description("ExtendedS3", body)
    if (body.get("DynamicPartitioningConfiguration") or {}).get("Enabled"):
        return _with_note(
            destination,
            "dynamic partitioning: the prefix's partition keys are not evaluated, so the "
            "whole fixed part of the prefix is listed",
        )
    return destination


def _with_note(destination: Destination, note: str) -> Destination:
    return replace(destination, note="; ".join(filter(None, (destination.note, note))))


def _without_s3_copy(kind: str, body: dict[str, Any]) -> Destination:
    mode = body.get("S3BackupMode") or ""
    backup = body.get("S3BackupDescription") if kind == "Redshift" else None
    backup = backup or body.get("S3DestinationDescription")
    if mode in ALL_DATA_BACKUP_MODES and backup:
        return _from_s3_description(
            kind,
            backup,
            f"{kind} itself cannot be read here: its S3 backup of all data is read, which "
            "confirms Firehose delivered each record there, not that " + kind + " accepted it",
        )
    hints = body.get("BufferingHints") or {}
    failed_only = f" (its S3 backup keeps failed records only: {mode})" if mode else ""
    return Destination(
        type=kind,
        readable=False,
        buffering_interval_seconds=int(hints.get("IntervalInSeconds", 0)),
        buffering_size_mib=int(hints.get("SizeInMBs", 0)),
        note=f"records go to {kind}, which cannot be read here{failed_only}: Firehose's "
        "acknowledgement is the last thing confirmed; set the S3 backup to all data to "
        "confirm delivery",
    )


# -- prefixes ------------------------------------------------------------------------------

_JAVA_FIELDS = {"yyyy": "%Y", "uuuu": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H"}
_FINER_THAN_HOUR = set("mshSAnNaK")


class _NotHourly(ValueError):
    """A timestamp pattern with minutes or finer: it cannot be enumerated hour by hour."""


def render_timestamp(pattern: str, moment: datetime) -> str:
    """A Java DateTimeFormatter ``pattern`` (the subset prefixes use) rendered for ``moment``.

    Raises ValueError for fields finer than the hour or unknown to this renderer.
    """
    out: list[str] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "'":  # a quoted literal; '' is a quote
            end = pattern.find("'", position + 1)
            if end < 0:
                raise _NotHourly(pattern)
            out.append(pattern[position + 1 : end] or "'")
            position = end + 1
            continue
        if not char.isalpha():
            out.append(char)
            position += 1
            continue
        run_end = position
        while run_end < len(pattern) and pattern[run_end] == char:
            run_end += 1
        token = pattern[position:run_end]
        if token not in _JAVA_FIELDS:
            raise _NotHourly(token)
        out.append(moment.strftime(_JAVA_FIELDS[token]))
        position = run_end
    return "".join(out)


def _render_prefix(template: str, moment: datetime) -> str:
    """The part of ``template`` that ``moment``'s hour decides: up to the first expression
    that depends on more than the hour (random string, error type, partition keys, minutes)."""
    out: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        out.append(template[position : match.start()])
        namespace, value = match.group(1), match.group(2)
        if namespace != "timestamp":
            return "".join(out)
        try:
            out.append(render_timestamp(value, moment))
        except _NotHourly:
            return "".join(out)
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def _hours(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    moment = start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    hours = []
    while moment <= end:
        hours.append(moment)
        moment = (moment + timedelta(hours=1)).astimezone(zone)
    return hours


def listing_prefixes(
    template: str, start: datetime, end: datetime, *, time_zone: str = "UTC"
) -> list[str]:
    """The S3 key prefixes to list for objects written between ``start`` and ``end``."""
    zone = ZoneInfo(time_zone)
    has_expressions = _EXPRESSION.search(template) is not None
    fixed = template[: _EXPRESSION.search(template).start()] if has_expressions else template  # type: ignore[union-attr]
    if not has_expressions and template and not template.endswith("/"):
        return [template]  # Firehose writes "prefix2026/…" and emulators "prefix/2026/…"
    hours = _hours(start, end, zone)
    if len(hours) > MAX_LISTED_HOURS:
        return [fixed]
    if not has_expressions:
        return list(dict.fromkeys(template + hour.strftime("%Y/%m/%d/%H/") for hour in hours))
    return list(dict.fromkeys(_render_prefix(template, hour) for hour in hours))


def error_listing_prefixes(destination: Destination, start: datetime, end: datetime) -> list[str]:
    """Where Firehose puts records it failed to deliver, for the same window."""
    if destination.error_output_prefix:
        return listing_prefixes(
            destination.error_output_prefix, start, end, time_zone=destination.time_zone
        )
    prefixes: list[str] = []
    for root in DEFAULT_ERROR_ROOTS:
        prefixes.extend(listing_prefixes(root, start, end, time_zone=destination.time_zone))
    return prefixes


def fixed_part(template: str) -> str:
    """The prefix up to its first expression: what an IAM resource can be scoped to."""
    match = _EXPRESSION.search(template)
    return template[: match.start()] if match else template


def read_policy(destination: Destination, partition: str) -> dict[str, Any]:
    """The IAM statements the operator needs to read ``destination``'s records."""
    bucket_arn = f"arn:{partition}:s3:::{destination.bucket}"
    objects: Iterable[str] = [
        f"{bucket_arn}/{fixed_part(destination.prefix)}*",
        *(
            [f"{bucket_arn}/{fixed_part(destination.error_output_prefix)}*"]
            if destination.error_output_prefix
            else [f"{bucket_arn}/{root}*" for root in DEFAULT_ERROR_ROOTS]
        ),
    ]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": list(dict.fromkeys(objects))},
    ]
    if destination.kms_key_arn:
        statements.append(
            {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [destination.kms_key_arn]}
        )
    return {"Version": "2012-10-17", "Statement": statements}
