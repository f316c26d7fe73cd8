"""The console asks glibc for two malloc arenas before its threads start (README: "Console speed
— `bench/console_speed.py`"): elsewhere it changes nothing."""

from __future__ import annotations

import argparse
import platform

import pytest

import console.cli
from console.malloc_arenas import limit_malloc_arenas


def test_glibc_agrees_to_two_arenas_and_other_c_libraries_are_left_alone() -> None:
    assert limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")


def test_the_console_limits_the_arenas_before_it_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(console.cli, "limit_malloc_arenas", lambda arenas=2: order.append("arenas"))

    def opened(*args: object, **kwargs: object) -> int:
        order.append("console")
        return 0

    monkeypatch.setattr("console.app.run_console", opened)
    monkeypatch.setattr(console.cli, "_load", lambda arguments: None)
    arguments = argparse.Namespace(connection=None, sandbox=True, audience=None)
    assert console.cli._run_console(arguments) == 0
    assert order == ["arenas", "console"]
