"""What a console does again and again leaves no reference cycles behind: only a full garbage
collection frees those, holding the interpreter lock for tens of milliseconds the screen waits
through (README: "Performance")."""

from __future__ import annotations

import gc
from pathlib import Path

from engine.regions import firehose_regions, partition_of
from engine.session import ConsoleSession
from engine.settings_file import load_settings

# A botocore session dropped is some 26,000 objects in cycles; a lookup should leave none.
FEW_OBJECTS = 1_000


def test_region_lookups_leave_no_cyclic_garbage() -> None:
    firehose_regions()
    partition_of("eu-west-1")
    gc.collect()
    firehose_regions.cache_clear()
    partition_of.cache_clear()

    assert "eu-west-1" in firehose_regions()
    assert partition_of("cn-north-1") == "aws-cn"
    assert gc.collect() < FEW_OBJECTS


def test_a_sandbox_session_keeps_its_operator_clients(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[connections.t]\ndelivery_stream_name = "s"\n[delivery]\nstate_dir = "{tmp_path}"\n'
    )
    session = ConsoleSession(load_settings(path), use_sandbox=True)
    try:
        first = session.operator_client("iam")
        assert session.operator_client("iam") is first  # not a new client per verification
        assert session.operator_client("sts") is not first
    finally:
        session.close()


def test_the_regions_are_those_a_botocore_session_lists() -> None:
    import botocore.session

    session = botocore.session.get_session()
    listed = {
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions("firehose", partition_name=partition)
    }
    assert firehose_regions() == tuple(sorted(listed))
    assert partition_of("us-gov-west-1") == session.get_partition_for_region("us-gov-west-1")
