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


#: Which parts of the package each layer may import (besides itself). The arrows run one way:
#: gui -> everything; commands/bench -> core; models -> engine; annotations -> engine;
#: engine -> nothing of ours but ``errors``. ``sam2_annotator`` alone is the package root
#: (``__version__``).
_ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "engine": frozenset({"errors"}),
    "annotations": frozenset({"engine", "errors"}),
    "models": frozenset({"engine", "errors", ""}),
    "platform_check": frozenset({"errors"}),  # runs before Qt: nothing heavy
    # the application without Qt: gui -> app -> (annotations, models, engine)
    "app": frozenset({"annotations", "models", "engine", "errors"}),
}
#: Parts that no core layer may import, whatever the table above says.
_NEVER_FROM_CORE = ("gui", "commands", "bench", "cli", "selftest")


def _imported_modules(path: Path, root: Path = PACKAGE_DIR.parent) -> set[str]:
    """Every ``sam2_annotator`` module a file imports, at any depth (lazy imports count too)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from sam2_annotator import models`` imports the subpackage
            if module == "sam2_annotator":
                found.update(
                    f"sam2_annotator.{alias.name}"
                    for alias in node.names
                    if not alias.name.startswith("__")  # __version__ is the root's own
                )
    return {m for m in found if m == "sam2_annotator" or m.startswith("sam2_annotator.")}


def _layer_of(module: str) -> str:
    """``sam2_annotator.engine.contracts`` -> ``engine``; the package root -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer_violations(layer: str) -> tuple[int, list[str]]:
    allowed = _ALLOWED_IMPORTS[layer] | {layer}
    folder = PACKAGE_DIR / layer
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE_DIR / f"{layer}.py"]
    offenders = []
    for path in files:
        for module in sorted(_imported_modules(path)):
            target = _layer_of(module)
            if target not in allowed or target in _NEVER_FROM_CORE:
                offenders.append(f"{path.relative_to(PACKAGE_DIR)} imports {module}")
    return len(files), offenders


def test_core_layers_import_one_way() -> None:
    """engine imports nothing of ours but errors; annotations and models only engine."""
    for layer in _ALLOWED_IMPORTS:
        checked, offenders = _layer_violations(layer)
        assert checked > 0, f"no modules found for layer {layer!r}"
        assert offenders == [], f"{layer} must not import these:\n" + "\n".join(offenders)


def test_layer_check_can_fail(tmp_path: Path) -> None:
    """The checker sees absolute, relative, lazy and ``from package import sub`` imports."""
    engine = tmp_path / "sam2_annotator" / "engine"
    engine.mkdir(parents=True)
    source = engine / "bad.py"
    source.write_text(
        "from sam2_annotator import models\n"
        "def f():\n"
        "    from ..annotations import store\n"
        "    import sam2_annotator.gui.app\n",
        encoding="utf-8",
    )
    found = _imported_modules(source, root=tmp_path)
    assert {
        "sam2_annotator.models",
        "sam2_annotator.annotations",
        "sam2_annotator.gui.app",
    } <= found
    assert _layer_of("sam2_annotator.models.catalog") == "models"


#: ENGINEERING.md: small modules with one responsibility each.
MAX_MODULE_LINES = 600
MAX_CLASS_METHODS = 40


def test_every_gui_module_is_qt_code() -> None:
    """gui/ holds only Qt code (Qt-free logic belongs in app/, where the test above guards it)."""
    import ast

    modules = sorted((PACKAGE_DIR / "gui").glob("*.py"))
    assert len(modules) > 10
    without_qt = []
    for path in modules:
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        } | {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        if not roots & {"PySide6", "shiboken6"}:
            without_qt.append(path.name)
    assert without_qt == [], f"move these Qt-free modules out of gui/: {without_qt}"


def test_modules_and_classes_stay_small() -> None:
    import ast

    long_modules, big_classes = [], []
    paths = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(paths) > 50
    for path in paths:
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + 1
        if lines > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(PACKAGE_DIR)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = [
                    b for b in node.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
                if len(methods) > MAX_CLASS_METHODS:
                    big_classes.append(f"{path.name}: {node.name} has {len(methods)} methods")
    assert long_modules == [], long_modules
    assert big_classes == [], big_classes
