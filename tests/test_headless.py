"""The engine is headless: importing it (or running the CLI's preview/verify paths) loads no
Textual, and the preview path loads no moto either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE_MODULES = sorted(
    f"engine.{path.stem}" for path in (ROOT / "engine").glob("*.py") if path.stem != "__init__"
)


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_no_engine_module_imports_textual() -> None:
    loaded = modules_after("\n".join(f"import {module}" for module in ENGINE_MODULES))
    assert set(ENGINE_MODULES) <= loaded
    assert not any(name == "textual" or name.startswith("textual.") for name in loaded)


def test_engine_source_never_prints() -> None:
    for path in (ROOT / "engine").glob("*.py"):
        assert "print(" not in path.read_text(), f"{path.name} prints"


def test_cli_preview_path_loads_neither_textual_nor_moto() -> None:
    loaded = modules_after(
        "import io, contextlib\n"
        "from console.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--settings', '/nonexistent/settings.toml', 'preview', 'add', '--json'])"
    )
    assert "textual" not in loaded
    assert "moto" not in loaded


def test_the_consoles_first_screen_loads_no_send_path_dialog_or_botocore() -> None:
    """What the console imports before its first frame is start-up time (README:
    "Performance"): the send path, the journals, the landed reader, the sandbox, botocore and
    the dialogs load when first used."""
    loaded = modules_after("import console.cli, console.app")
    later = {
        "engine.delivery",
        "engine.gateway",
        "engine.burst",
        "engine.outbox",
        "engine.operator",
        "engine.permissions",
        "engine.landed",
        "engine.sandbox",
        "engine.dead_letters",
        "engine.jsonl",
        "botocore",
        "console.widgets.dialogs",
        "console.widgets.send_confirm",
        "console.widgets.target_choice",
        "console.widgets.dead_letters_pane",
    }
    assert "console.app" in loaded
    assert later.isdisjoint(loaded), sorted(later & loaded)
