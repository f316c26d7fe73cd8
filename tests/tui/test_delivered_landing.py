"""The Delivered tab shows where each sent record landed, read by the engine's destination
reader, for the embedded sandbox and for a real stream (here moto's server at an endpoint)."""

from __future__ import annotations

from pathlib import Path

from driving import (
    confirm_send,
    make_app,
    run_scenario,
    sandbox_settings,
    settle,
    unique_stream,
    write_settings,
)
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.app import FirehoseConsoleApp
from engine.sandbox import EmbeddedSandbox


def landing_rows(app: FirehoseConsoleApp) -> list[str]:
    table = app.query_one("#landing-table", DataTable)
    return [" | ".join(str(cell) for cell in table.get_row(key)) for key in table.rows]


async def send_add_then_open_delivered(pilot: Pilot[int], *, to_aws: bool = False) -> None:
    await pilot.press("f3", "a")
    if to_aws:  # a send to a real stream names it and asks first
        await pilot.pause()
        await confirm_send(pilot)
    await settle(pilot)
    await pilot.press("f6")
    await settle(pilot)


def test_the_sandbox_delivered_tab_says_each_record_landed(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await send_add_then_open_delivered(pilot)
        [row] = landing_rows(app)
        assert row.startswith("landed | LowEngagement | add")
        assert "s3://firehose-console-sandbox/audiences/" in row
        summary = str(app.query_one("#landing-summary", Static).render())
        assert summary.startswith("1 acknowledged record(s): 1 landed")

    run_scenario(app, scenario)


def test_a_real_stream_delivered_tab_reads_its_destination(
    tmp_path: Path, sandbox: EmbeddedSandbox
) -> None:
    stream = unique_stream()
    sandbox.ensure_stream(stream)
    settings = write_settings(
        tmp_path / "settings.toml",
        {
            "connections": {
                "travel": {"delivery_stream_name": stream, "endpoint_url": sandbox.endpoint_url}
            },
            "delivery": {"state_dir": str(tmp_path / "state")},
        },
    )
    app = make_app(settings)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await send_add_then_open_delivered(pilot, to_aws=True)
        [row] = landing_rows(app)
        assert row.startswith("landed | LowEngagement | add")
        assert f"s3://{sandbox.bucket_name}/audiences/" in row
        assert not app.query_one("#delivered-table").display  # the sandbox's own view only

    run_scenario(app, scenario)
