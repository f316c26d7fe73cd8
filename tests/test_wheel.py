"""The package that installs (README: "Development", packaging): the wheel built from this
checkout, installed into a fresh virtual environment outside the repository, runs the CLI and the
console from there, ships every runtime file, and claims no top-level ``engine`` or ``console``.

The fresh environment borrows the dev environment's third-party packages through one ``.pth``
line (nothing is downloaded). A path added by a ``.pth`` line does not have its own ``.pth`` files
run, so the dev environment's editable finder stays off: ``engine`` and ``console`` can only come
from the wheel. Deselect with ``-m "not wheel"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "engine", "console", "firehose_console"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

FIRST_SCREEN_PROBE = """
import asyncio, sys
from pathlib import Path
from firehose_console.launcher import folder_holding_the_packages
sys.path.insert(0, str(folder_holding_the_packages()))
from console.app import FirehoseConsoleApp
from engine.settings_file import load_settings

async def first_screen() -> None:
    app = FirehoseConsoleApp(load_settings(Path("no-settings.toml")), auto_verify=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        print("tab", app.query_one("#tabs").active)
        print("status-line dock", app.query_one("#status-line").styles.dock)
        for path, _ in app.stylesheet.source:
            print("stylesheet", path)
        print("console from", sys.modules["console"].__file__)
        print("engine from", sys.modules["engine"].__file__)

asyncio.run(first_screen())
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    script: Path
    site_packages: Path
    workdir: Path  # outside the repository: the repository's folders cannot be imported from it

    def run(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.run(
            [str(arg) for arg in argv],
            cwd=self.workdir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )


def files_under(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def build_wheel(into: Path) -> Path:
    """Builds from a copy of the sources, so no stale ``build/`` folder can add or hide a file."""
    source = into / "source"
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--wheel-dir", str(into / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (into / "dist").glob("firehose_console-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(base)
    venv = base / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Third-party packages from the dev environment, written after the install so pip could
    # not mistake the dev environment's editable firehose-console for this one.
    (site_packages / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = base / "elsewhere"
    workdir.mkdir()
    yield Installed(wheel, python, venv / "bin" / "firehose-console", site_packages, workdir)


def test_the_wheel_ships_every_file_of_engine_and_console(installed: Installed) -> None:
    in_repository = {f"firehose_console/{name}" for name in files_under(ROOT / "firehose_console")}
    for package in ("engine", "console"):  # carried one level down, inside firehose_console/
        in_repository |= {
            f"firehose_console/{package}/{name}" for name in files_under(ROOT / package)
        }
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = set(wheel.namelist())
    assert "firehose_console/console/app.tcss" in shipped
    assert in_repository - shipped == set()


def test_the_wheel_claims_no_top_level_engine_or_console(installed: Installed) -> None:
    assert not (installed.site_packages / "engine").exists()
    assert not (installed.site_packages / "console").exists()
    (dist_info,) = installed.site_packages.glob("firehose_console-*.dist-info")
    assert (dist_info / "top_level.txt").read_text().split() == ["firehose_console"]


def test_version_comes_from_the_package_metadata(installed: Installed) -> None:
    result = installed.run(installed.script, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"firehose-console {VERSION}\n",
        "",
    )


def test_the_installed_cli_previews(installed: Installed) -> None:
    result = installed.run(installed.script, "preview", "add", "--json")
    assert result.returncode == 0, result.stderr
    (message,) = json.loads(result.stdout)["messages"]
    assert (message["action"], message["will_send"]) == ("add", True)


def test_the_installed_console_opens_with_its_stylesheet(installed: Installed) -> None:
    result = installed.run(installed.python, "-c", FIRST_SCREEN_PROBE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "tab settings" in lines
    assert "status-line dock top" in lines  # a rule of app.tcss, applied
    shipped = installed.site_packages / "firehose_console" / "console"
    assert f"stylesheet {shipped / 'app.tcss'}" in lines
    assert f"console from {shipped / '__init__.py'}" in lines
    engine = installed.site_packages / "firehose_console" / "engine" / "__init__.py"
    assert f"engine from {engine}" in lines
