"""The entry point's first argument: a command, an existing path (the GUI) or a mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sam2_annotator import cli


@pytest.fixture
def gui_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace the GUI's ``main`` so a test sees whether (and with what) it would start."""
    calls: list[list[str]] = []

    def fake_gui_main(argv: list[str]) -> int:
        calls.append(list(argv))
        return 0

    monkeypatch.setattr("sam2_annotator.gui.app.main", fake_gui_main)
    # offscreen: the X11 library check before the GUI (tests/test_platform_check.py) stays quiet
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    return calls


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [("segmnet", "segment"), ("encod", "encode"), ("model", "models"), ("help", "--help")],
)
def test_mistyped_command_suggests_the_close_one(
    word: str,
    suggestion: str,
    gui_calls: list[list[str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main([word]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"unknown command '{word}' \N{EM DASH} did you mean '{suggestion}'? "
        "To open files, give their path\n"
    )
    assert gui_calls == []


def test_unknown_word_without_close_match(
    gui_calls: list[list[str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["frobnicate", "--model", "x"]) == 2
    err = capsys.readouterr().err
    assert err == "unknown command 'frobnicate'. To open files, give their path\n"
    assert "did you mean" not in err
    assert gui_calls == []


def test_missing_path_is_named(
    gui_calls: list[list[str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["holiday/photo.jpg"]) == 2
    assert capsys.readouterr().err == "no such file or folder: 'holiday/photo.jpg'\n"
    assert gui_calls == []


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_existing_name_without_extension_opens_the_gui(
    kind: str, gui_calls: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder (or file) called ``segmnet`` is a path, not a typo."""
    target = tmp_path / "segmnet"
    if kind == "folder":
        target.mkdir()
    else:
        target.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["segmnet", "--model", "m"]) == 0
    assert gui_calls == [["segmnet", "--model", "m"]]


def test_no_argument_and_options_still_open_the_gui(gui_calls: list[list[str]]) -> None:
    assert cli.main([]) == 0
    assert cli.main(["--model", "m"]) == 0
    assert gui_calls == [[], ["--model", "m"]]


def test_impossible_names_are_typos_not_crashes() -> None:
    assert cli.unknown_first_argument(["x" * 5000]) is not None
    assert cli.unknown_first_argument(["seg\0ment"]) is not None


def test_commands_are_never_taken_for_typos() -> None:
    for name in cli._command_names():
        assert cli.unknown_first_argument([name]) is None


def test_real_entry_point_exits_2_without_starting_qt(tmp_path: Path) -> None:
    """The installed console script path: one line on stderr, exit 2, Qt never imported."""
    script = (
        "import sys\n"
        "from sam2_annotator.cli import main\n"
        "code = main(['segmnet'])\n"
        "assert 'PySide6' not in sys.modules, 'Qt was imported'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "unknown command 'segmnet' \N{EM DASH} did you mean 'segment'? "
        "To open files, give their path"
    ]
