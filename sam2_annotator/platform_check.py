"""Before Qt starts on a Linux desktop: are the system libraries of Qt's X11 plugin there?

PySide6's wheels bundle Qt but not the X11 (xcb) libraries its platform plugin links against. On a
bare desktop Qt then aborts (core dump) with a message that names at most one of them. This module
asks the dynamic loader instead — ``ldd`` on the plugin ``libqxcb.so``, whose "not found" lines are
the ground truth — and turns every missing library into the packages to install, for
Debian/Ubuntu and for Fedora, in one line.

No Qt here: the plugin is located with :func:`importlib.util.find_spec`, which does not import
PySide6. Nothing is reported when ``ldd`` or the plugin cannot be found (better to let Qt try than
to refuse a working setup).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Set to 1 to skip the check before the GUI starts (a setup where ``ldd`` misleads).
SKIP_ENV = "SAM2_ANNOTATOR_SKIP_PLATFORM_CHECK"

#: The system libraries Qt's xcb plugin (and the Qt libraries it loads) need, and the packages
#: that provide them: soname -> (Debian/Ubuntu, Fedora). These are the prerequisites the README
#: lists and the .deb depends on (tests/test_platform_check.py keeps the three in step).
XCB_PREREQUISITES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}

#: Libraries every desktop has (or that come with the ones above); named if ever missing.
OTHER_LIBRARIES: dict[str, tuple[str, str]] = {
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libpng16.so.16": ("libpng16-16", "libpng"),
    "libzstd.so.1": ("libzstd1", "libzstd"),
    "libexpat.so.1": ("libexpat1", "expat"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libbrotlidec.so.1": ("libbrotli1", "libbrotli"),
    "libpcre2-8.so.0": ("libpcre2-8-0", "pcre2"),
}

#: Libraries that come with PySide6 itself: when ldd cannot place them the process may still
#: (they are often already loaded), so they are never reported.
_BUNDLED_PREFIXES = ("libQt6", "libicu", "libpyside6", "libshiboken6")

#: Qt platforms whose plugin does not need the X11 libraries.
_NON_X11 = ("offscreen", "minimal", "minimalegl", "wayland", "eglfs", "linuxfb", "vnc", "vkkhr")


def qt_platform(env: Mapping[str, str] | None = None) -> str:
    """The platform plugin Qt will try first: ``QT_QPA_PLATFORM``'s first entry (without its
    ``:options``), else ``wayland`` in a Wayland session (Qt falls back to xcb), else ``xcb``."""
    env = os.environ if env is None else env
    value = env.get("QT_QPA_PLATFORM", "").strip()
    if value:
        first = value.split(";")[0].split(":")[0].strip().lower()
        if first:
            return first
    if env.get("XDG_SESSION_TYPE", "").lower() == "wayland" and env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def find_xcb_plugin() -> Path | None:
    """PySide6's ``Qt/plugins/platforms/libqxcb.so``, found without importing PySide6."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    roots: list[Path] = []
    if spec is not None:
        roots += [Path(p) for p in (spec.submodule_search_locations or [])]
        if spec.origin:
            roots.append(Path(spec.origin).parent)
    frozen_root = getattr(sys, "_MEIPASS", None)  # PyInstaller bundle
    if frozen_root:
        roots.append(Path(frozen_root) / "PySide6")
    for root in roots:
        for sub in ("Qt/plugins/platforms", "plugins/platforms"):
            candidate = root / sub / "libqxcb.so"
            if candidate.is_file():
                return candidate
    return None


def run_ldd(library: Path) -> str | None:
    """``ldd library``'s output, or ``None`` when there is no ``ldd`` or it fails to run."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        result = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("ldd %s failed: %s", library, exc)
        return None
    if result.returncode != 0 and "not found" not in result.stdout:
        log.debug("ldd %s: exit %s, %s", library, result.returncode, result.stderr.strip())
        return None
    return result.stdout


def missing_from_ldd(output: str) -> list[str]:
    """The sonames of the ``name => not found`` lines, in order, each once."""
    missing: list[str] = []
    for line in output.splitlines():
        name, arrow, target = line.strip().partition("=>")
        if arrow and target.strip() == "not found":
            soname = name.strip()
            if soname and soname not in missing and not soname.startswith(_BUNDLED_PREFIXES):
                missing.append(soname)
    return missing


def _package(soname: str) -> tuple[str, str] | None:
    return XCB_PREREQUISITES.get(soname) or OTHER_LIBRARIES.get(soname)


def install_line(missing: Sequence[str]) -> str:
    """One line: what is missing and the apt-get / dnf command that installs it."""
    debian: list[str] = []
    fedora: list[str] = []
    unknown: list[str] = []
    for soname in missing:
        packages = _package(soname)
        if packages is None:
            unknown.append(soname)
            continue
        if packages[0] not in debian:
            debian.append(packages[0])
        if packages[1] not in fedora:
            fedora.append(packages[1])
    text = f"Qt cannot start on this X11 desktop: missing system libraries {', '.join(missing)}."
    if debian:
        text += (
            f" Install them with: sudo apt-get install {' '.join(debian)} (Debian/Ubuntu)"
            f" or: sudo dnf install {' '.join(fedora)} (Fedora)."
        )
    if unknown:
        text += f" Install the packages that provide {', '.join(unknown)}."
    return text


@dataclass(frozen=True)
class PlatformReport:
    """What the check found. ``missing`` is empty when all was found or nothing was checked."""

    platform: str
    checked: bool
    missing: tuple[str, ...] = ()
    note: str = ""

    @property
    def fatal(self) -> bool:
        """Qt would abort: the libraries are missing and X11 is the platform it will use."""
        return bool(self.missing) and self.platform == "xcb"

    def message(self) -> str:
        return install_line(self.missing) if self.missing else ""


#: Test seams: where the plugin is and what ``ldd`` says about it.
PluginFinder = Callable[[], Path | None]
LddRunner = Callable[[Path], str | None]


def check_qt_platform(
    env: Mapping[str, str] | None = None,
    *,
    system: str | None = None,
    plugin_finder: PluginFinder | None = None,
    ldd_output: LddRunner | None = None,
) -> PlatformReport:
    """Examine the xcb plugin's libraries (Linux only). The finder and ``ldd`` are injectable so
    that a test can simulate a missing library."""
    platform = qt_platform(env)
    if not (system or sys.platform).startswith("linux"):
        return PlatformReport(platform, checked=False, note="not Linux")
    plugin = (plugin_finder or find_xcb_plugin)()
    if plugin is None:
        return PlatformReport(platform, checked=False, note="Qt's xcb plugin not found")
    output = (ldd_output or run_ldd)(plugin)
    if output is None:
        return PlatformReport(platform, checked=False, note="ldd is not available")
    return PlatformReport(platform, checked=True, missing=tuple(missing_from_ldd(output)))


def gui_preflight(
    env: Mapping[str, str] | None = None,
    *,
    system: str | None = None,
    plugin_finder: PluginFinder | None = None,
    ldd_output: LddRunner | None = None,
) -> str | None:
    """The one line to print (and exit 1) instead of starting Qt, or ``None`` to go ahead.

    Only on Linux when Qt will use X11: a missing library, or no display at all.
    """
    env = os.environ if env is None else env
    if env.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    if not (system or sys.platform).startswith("linux") or qt_platform(env) != "xcb":
        return None
    report = check_qt_platform(
        env, system=system, plugin_finder=plugin_finder, ldd_output=ldd_output
    )
    if report.fatal:
        return report.message()
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no desktop display: DISPLAY is not set. Start sam2-annotator from a desktop session "
            "(or over ssh -X); for a headless check run: sam2-annotator --self-test"
        )
    return None


def self_test_line(
    env: Mapping[str, str] | None = None,
    *,
    system: str | None = None,
    plugin_finder: PluginFinder | None = None,
    ldd_output: LddRunner | None = None,
) -> str:
    """The ``--self-test`` line about the desktop libraries; raises
    :class:`~sam2_annotator.errors.UserError` when the GUI could not start on X11 here.

    With another platform (``QT_QPA_PLATFORM=offscreen`` in CI) missing X11 libraries are a
    warning: the same bundle started from a desktop would need them.
    """
    from sam2_annotator.errors import UserError

    report = check_qt_platform(
        env, system=system, plugin_finder=plugin_finder, ldd_output=ldd_output
    )
    if not report.checked:
        return f"not checked ({report.note})"
    if report.fatal:
        raise UserError(report.message())
    if report.missing:
        return f"warning, needed on an X11 desktop (Qt platform now: {report.platform}): " + (
            report.message()
        )
    return "X11 (xcb): every library of Qt's platform plugin found"
