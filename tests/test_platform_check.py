"""Before Qt starts on X11: missing system libraries become one line naming the packages."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from sam2_annotator import platform_check as pc

ROOT = Path(__file__).resolve().parents[1]
FAKE_PLUGIN = Path("/opt/fake/PySide6/Qt/plugins/platforms/libqxcb.so")

#: ldd on libqxcb.so as seen on a bare desktop (Xvfb, no xcb-util packages): the icccm and
#: keysyms lines repeat (several Qt libraries need them); Qt's own libraries resolve.
BARE_DESKTOP_LDD = """\
\tlinux-vdso.so.1 (0x00007ffd1d5f2000)
\tlibQt6XcbQpa.so.6 => /opt/fake/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f5c2c000000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f5c2bff0000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibQt6Gui.so.6 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f5c2c400000)
"""

EXPECTED_LINE = (
    "Qt cannot start on this X11 desktop: missing system libraries libxcb-cursor.so.0, "
    "libxcb-icccm.so.4, libxcb-keysyms.so.1. Install them with: sudo apt-get install "
    "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 (Debian/Ubuntu) or: sudo dnf install "
    "xcb-util-cursor xcb-util-wm xcb-util-keysyms (Fedora)."
)

X11 = {"DISPLAY": ":0"}


def _fake(ldd: str | None):
    calls: list[Path] = []

    def run(plugin: Path) -> str | None:
        calls.append(plugin)
        return ldd

    return run, calls


def test_missing_libraries_from_ldd_each_once_and_not_qts_own() -> None:
    assert pc.missing_from_ldd(BARE_DESKTOP_LDD) == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
    ]


def test_simulated_missing_libraries_give_one_line_with_both_package_names() -> None:
    ldd, calls = _fake(BARE_DESKTOP_LDD)
    line = pc.gui_preflight(X11, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
    assert calls == [FAKE_PLUGIN]
    assert line == EXPECTED_LINE
    assert "\n" not in line


def test_cli_prints_the_line_and_exits_1_without_starting_qt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The GUI launch path of the real entry point, with ldd simulated."""
    from sam2_annotator import cli

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.delenv(pc.SKIP_ENV, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(pc, "find_xcb_plugin", lambda: FAKE_PLUGIN)
    monkeypatch.setattr(pc, "run_ldd", _fake(BARE_DESKTOP_LDD)[0])

    def gui_must_not_start(argv: list[str]) -> int:
        raise AssertionError("the GUI started")

    monkeypatch.setattr("sam2_annotator.gui.app.main", gui_must_not_start)
    assert cli.main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == EXPECTED_LINE + "\n"


def test_all_found_is_silent() -> None:
    ok = BARE_DESKTOP_LDD.replace("=> not found", "=> /usr/lib/x86_64-linux-gnu/found.so")
    ldd, _ = _fake(ok)
    assert (
        pc.gui_preflight(X11, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
        is None
    )


@pytest.mark.parametrize(
    "env",
    [
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "minimal"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"QT_QPA_PLATFORM": "wayland;xcb", "WAYLAND_DISPLAY": "wayland-0"},
        {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"},
        {**X11, pc.SKIP_ENV: "1"},
    ],
)
def test_not_x11_or_skipped_is_not_checked(env: dict[str, str]) -> None:
    ldd, calls = _fake(BARE_DESKTOP_LDD)
    assert (
        pc.gui_preflight(env, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
        is None
    )
    assert calls == []


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_other_systems_are_not_checked(system: str) -> None:
    ldd, calls = _fake(BARE_DESKTOP_LDD)
    assert (
        pc.gui_preflight(X11, system=system, plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
        is None
    )
    assert calls == []


@pytest.mark.parametrize(
    ("value", "platform"),
    [
        ("", "xcb"),
        ("xcb", "xcb"),
        ("XCB", "xcb"),
        ("xcb;wayland", "xcb"),
        ("offscreen:fontengine=freetype", "offscreen"),
        ("wayland;xcb", "wayland"),
    ],
)
def test_qt_platform(value: str, platform: str) -> None:
    assert pc.qt_platform({"QT_QPA_PLATFORM": value}) == platform


def test_without_ldd_or_plugin_nothing_is_refused() -> None:
    """Better to let Qt try than to refuse a setup we cannot examine."""
    assert pc.gui_preflight(X11, system="linux", plugin_finder=lambda: None) is None
    ldd, _ = _fake(None)
    assert (
        pc.gui_preflight(X11, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
        is None
    )


def test_unknown_library_is_still_named() -> None:
    ldd, _ = _fake("\tlibxcb-icccm.so.4 => not found\n\tlibfancy.so.3 => not found\n")
    line = pc.gui_preflight(X11, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
    assert line is not None
    assert "sudo apt-get install libxcb-icccm4 (Debian/Ubuntu)" in line
    assert line.endswith("Install the packages that provide libfancy.so.3.")


def test_no_display_is_said_instead_of_a_crash() -> None:
    ldd, _ = _fake("")
    line = pc.gui_preflight({}, system="linux", plugin_finder=lambda: FAKE_PLUGIN, ldd_output=ldd)
    assert line is not None and line.startswith("no desktop display: DISPLAY is not set.")


def test_self_test_line_fails_on_x11_and_warns_offscreen() -> None:
    from sam2_annotator.errors import UserError

    ldd, _ = _fake(BARE_DESKTOP_LDD)
    options = {"system": "linux", "plugin_finder": lambda: FAKE_PLUGIN, "ldd_output": ldd}
    with pytest.raises(UserError, match=re.escape("missing system libraries libxcb-cursor.so.0")):
        pc.self_test_line({}, **options)
    warning = pc.self_test_line({"QT_QPA_PLATFORM": "offscreen"}, **options)
    assert warning.startswith("warning, needed on an X11 desktop (Qt platform now: offscreen)")
    assert pc.self_test_line({}, system="linux", plugin_finder=lambda: None).startswith(
        "not checked"
    )


# --------------------------------------------------------------------------- on this machine


def test_offscreen_here_reports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run offscreen: whatever this machine lacks, the GUI path says nothing."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert pc.gui_preflight() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_real_plugin_and_ldd_here() -> None:
    """PySide6's plugin is found without importing Qt; every X11 library it names is known."""
    plugin = pc.find_xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    output = pc.run_ldd(plugin)
    if output is None:
        pytest.skip("no ldd on this machine")
    named = {line.split("=>")[0].strip() for line in output.splitlines() if "=>" in line}
    x11 = {n for n in named if n.startswith(("libxcb", "libxkb", "libX11", "libEGL", "libGL."))}
    assert x11, output
    unknown = x11 - set(pc.XCB_PREREQUISITES) - set(pc.OTHER_LIBRARIES)
    assert unknown == set(), "add these to platform_check.XCB_PREREQUISITES"
    report = pc.check_qt_platform({})
    assert report.checked


def test_find_plugin_does_not_import_qt() -> None:
    import subprocess

    script = (
        "import sys\n"
        "from sam2_annotator.platform_check import find_xcb_plugin\n"
        "find_xcb_plugin()\n"
        "assert 'PySide6' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the prerequisites


def test_deb_depends_on_every_prerequisite() -> None:
    script = (ROOT / "packaging" / "build_linux.sh").read_text(encoding="utf-8")
    depends_line = re.search(r"^Depends: (.+)$", script, re.MULTILINE)
    assert depends_line is not None
    depends = {d.strip().split(" ")[0] for d in depends_line.group(1).split(",")}
    wanted = {debian for debian, _ in pc.XCB_PREREQUISITES.values()}
    assert wanted - depends == set()


def test_readme_lists_every_prerequisite() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    apt = re.search(r"sudo apt-get install (.+)", readme)
    dnf = re.search(r"sudo dnf install (.+)", readme)
    assert apt is not None and dnf is not None
    assert {d for d, _ in pc.XCB_PREREQUISITES.values()} - set(apt.group(1).split()) == set()
    assert {f for _, f in pc.XCB_PREREQUISITES.values()} - set(dnf.group(1).split()) == set()
