"""The embedded sandbox's answer to PutRecordBatch, written straight from moto's result.

README: "The embedded sandbox". moto answers every call through its generic serializer, which
walks the service model for each field of each entry: for a batch of 500 records, half of the
CPU the whole call costs this process (client and server together), on the interpreter lock a
console's screen shares with it. moto's Firehose backend already returns the answer as plain
JSON data (the failed count, the encryption flag, one RecordId per record), so it is written as
JSON directly: the same body, the same headers; errors still take moto's own path.
"""

from __future__ import annotations

import json
from typing import Any

# The JSON protocol's content type, as moto's serializer sets it for Firehose.
FIREHOSE_CONTENT_TYPE = "application/x-amz-json-1.1"
# moto's own method, once replaced (a test compares the two answers).
moto_own: dict[str, Any] = {}


def answer_put_record_batch_straight(firehose_response: Any) -> None:
    """Route the PutRecordBatch answers of ``firehose_response`` (moto's ``FirehoseResponse``,
    passed in by the sandbox, the one module that imports moto) through ``_put_record_batch``,
    once per process: moto's response classes are shared by every server and mock in it."""
    if firehose_response.put_record_batch is _put_record_batch:
        return
    moto_own["put_record_batch"] = firehose_response.put_record_batch
    firehose_response.put_record_batch = _put_record_batch


def _put_record_batch(response: Any) -> tuple[str, dict[str, str]]:
    """moto's own ``FirehoseResponse.put_record_batch``, its result serialized by json."""
    result = response.firehose_backend.put_record_batch(
        response._get_param("DeliveryStreamName"), response._get_param("Records")
    )
    return json.dumps(result), {"Content-Type": FIREHOSE_CONTENT_TYPE}
