"""The core never needs Qt or torch: import every non-GUI module with both made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import sam2_annotator

PACKAGE_DIR = Path(sam2_annotator.__file__).parent


def _core_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name.startswith("sam2_annotator.gui"):
            continue
        names.append(name)
    return names


def test_core_imports_without_qt_or_torch() -> None:
    modules = _core_modules()
    assert "sam2_annotator.engine.contracts" in modules
    script = textwrap.dedent(
        f"""
        import importlib, sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                root = name.split(".")[0]
                if root in ("PySide6", "PyQt5", "PyQt6", "qtpy", "shiboken6", "superqt",
                            "torch", "torchvision", "sam2"):
                    raise ImportError("blocked for this test: " + name)
                return None
        sys.meta_path.insert(0, Blocker())
        for name in {modules!r}:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("PySide6", "shiboken6", "torch", "sam2"))
        assert not leaked, leaked
        print("imported", len({modules!r}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(modules)}" in result.stdout


def test_only_gui_imports_qt() -> None:
    offenders = []
    for path in PACKAGE_DIR.rglob("*.py"):
        if "gui" in path.relative_to(PACKAGE_DIR).parts:
            continue
        text = path.read_text(encoding="utf-8")
        for word in ("import PySide6", "from PySide6", "import shiboken6"):
            if word in text:
                offenders.append(f"{path}: {word}")
    assert offenders == []


def test_every_package_is_listed_in_pyproject() -> None:
    import tomllib

    listed = set(
        tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    found = {
        ".".join(p.parent.relative_to(PACKAGE_DIR.parent).parts)
        for p in PACKAGE_DIR.rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"
    assert "sam2_annotator.resources" in listed


def test_resources_are_package_data() -> None:
    from sam2_annotator.resources import APP_ICON_PNG, SAMPLE_IMAGE, resource_path

    assert resource_path(SAMPLE_IMAGE).stat().st_size > 10_000
    assert resource_path(APP_ICON_PNG).read_bytes().startswith(b"\x89PNG")
