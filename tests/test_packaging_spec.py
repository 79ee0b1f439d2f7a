"""The PyInstaller spec's decisions, evaluated with stand-ins for PyInstaller's build objects.

Building needs each platform's runner; what the spec asks PyInstaller for can be checked here:
a windowed Windows build gets a console twin ``sam2-annotator-cli.exe`` in the same folder, and
the Linux build stays one console executable.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "sam2-annotator.spec"


class _Target:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class _Analysis(_Target):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binaries = [("PySide6/Qt/lib/libQt6Gui.so.6", "x", "BINARY")]
        self.datas = [("PySide6/Qt/translations/qt_de.qm", "x", "DATA")]
        self.pure: list[Any] = []
        self.scripts = ["entry"]


def _evaluate_spec(
    monkeypatch: pytest.MonkeyPatch, platform: str, windowed: bool
) -> dict[str, list[_Target]]:
    built: dict[str, list[_Target]] = {"EXE": [], "COLLECT": [], "BUNDLE": []}

    def recorder(kind: str) -> type[_Target]:
        class Recorded(_Target):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                built[kind].append(self)

        return Recorded

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = lambda *a, **k: []  # type: ignore[attr-defined]
    hooks.collect_dynamic_libs = lambda *a, **k: []  # type: ignore[attr-defined]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setenv("SAM2A_WINDOWED", "1" if windowed else "0")
    monkeypatch.delenv("SAM2A_NAME", raising=False)
    monkeypatch.delenv("SAM2A_MODEL_DIR", raising=False)
    namespace = {
        "SPECPATH": str(SPEC.parent),
        "Analysis": _Analysis,
        "PYZ": _Target,
        "EXE": recorder("EXE"),
        "COLLECT": recorder("COLLECT"),
        "BUNDLE": recorder("BUNDLE"),
    }
    code = compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec")
    real_platform = sys.platform
    sys.platform = platform  # only while the spec runs
    try:
        exec(code, namespace)  # the spec is our own file
    finally:
        sys.platform = real_platform
    return built


def _exes(built: dict[str, list[_Target]]) -> list[tuple[str, bool]]:
    return [(exe.kwargs["name"], exe.kwargs["console"]) for exe in built["EXE"]]


def test_windows_gets_a_console_twin_in_the_same_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _evaluate_spec(monkeypatch, "win32", windowed=True)
    assert _exes(built) == [("sam2-annotator", False), ("sam2-annotator-cli", True)]
    (collect,) = built["COLLECT"]
    assert collect.args[:2] == tuple(built["EXE"])  # one folder, both executables
    assert collect.kwargs["name"] == "sam2-annotator"


def test_linux_build_is_one_console_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _evaluate_spec(monkeypatch, "linux", windowed=False)
    assert _exes(built) == [("sam2-annotator", True)]
    (collect,) = built["COLLECT"]
    assert collect.args[0] is built["EXE"][0] and len(collect.args) == 3
    assert built["BUNDLE"] == []


def test_macos_app_has_no_cli_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _evaluate_spec(monkeypatch, "darwin", windowed=True)
    assert _exes(built) == [("sam2-annotator", False)]
    assert len(built["BUNDLE"]) == 1
