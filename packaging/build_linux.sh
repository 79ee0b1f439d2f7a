#!/usr/bin/env bash
# Build the Linux app from a clean virtual environment with runtime dependencies only:
#   dist/sam2-annotator/sam2-annotator   (PyInstaller onedir)
#   dist/sam2-annotator-VERSION-linux-ARCH.tar.gz
#   dist/sam2-annotator_VERSION_ARCH.deb  (installs to /opt/sam2-annotator, /usr/bin launcher,
#                                          .desktop entry and icon)
# Run from the repository root. Options (environment):
#   ORT=cpu|gpu            which onnxruntime wheel to bundle (default cpu)
#   SAM2A_MODEL_DIR=DIR    a model folder to bundle (default: none; the app offers a download)
#   PYTHON=python3.11      interpreter for the build venv
#   OPENCV_WHEEL=FILE      the small OpenCV wheel of packaging/build_opencv_min.sh instead of
#                          PyPI's opencv-python-headless (the release build sets it; the bundle
#                          is ~120 MB smaller: the du table at the end of this script's log)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
ORT=${ORT:-cpu}
VENV=build/pack-venv
VERSION=$("$PYTHON" -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
start=$(date +%s)

echo "== clean build venv ($VENV, onnxruntime: $ORT)"
rm -rf "$VENV" build/pyinstaller dist/sam2-annotator
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip wheel
"$VENV/bin/pip" install -q . pyinstaller
if [ "$ORT" = gpu ]; then
  "$VENV/bin/pip" uninstall -q -y onnxruntime
  "$VENV/bin/pip" install -q onnxruntime-gpu
fi
if [ -n "${OPENCV_WHEEL:-}" ]; then
  echo "== OpenCV from $OPENCV_WHEEL (core, imgproc, imgcodecs, videoio only)"
  "$VENV/bin/pip" uninstall -q -y opencv-python-headless
  "$VENV/bin/pip" install -q --no-deps "$OPENCV_WHEEL"
  "$VENV/bin/python" -c "import cv2; print('cv2', cv2.__version__)"
fi
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "torch is in the build venv: refusing to build (the app must not bundle it)" >&2
  exit 1
fi

echo "== pyinstaller"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --workpath build/pyinstaller --distpath dist packaging/sam2-annotator.spec

APP=dist/sam2-annotator
if find "$APP" -iname '*torch*' | grep -q .; then
  echo "torch files found in the bundle" >&2
  exit 1
fi
before_kb=$(du -sk "$APP" | cut -f1)

echo "== strip debug sections of the interpreter (libpython ships 16 MB of them), Pillow, pycocotools"
# Not the libraries auditwheel grafted into the wheels (edited by patchelf; stripping them breaks
# them, e.g. numpy's OpenBLAS: "ELF load command address/offset not page-aligned").
# --strip-debug keeps the symbol tables the dynamic loader uses.
if command -v strip >/dev/null; then
  find "$APP/_internal" -maxdepth 1 -type f -name 'libpython*' -exec strip --strip-debug {} +
  find "$APP/_internal" -path '*/lib-dynload/*.so' -type f -exec strip --strip-debug {} +
  # Pillow's and pycocotools' own extension modules carry 4 MB of debug sections; stripping
  # them (not the libraries auditwheel grafted beside them) was checked to keep them loading,
  # and the frozen --self-test decodes a JPEG with Pillow and round-trips a mask through
  # pycocotools' RLE.
  find "$APP/_internal/PIL" "$APP/_internal/pycocotools" -maxdepth 1 -type f -name '*.so' \
    -exec strip --strip-debug {} +
else
  echo "strip not found: libpython keeps its debug sections" >&2
fi

echo "== no kept binary links a library the spec prunes (GTK_ONLY)"
# Libraries missing from this build machine are only reported (e.g. Wayland's EGL/cursor
# libraries, which Qt's Wayland plugins take from the user's desktop); a pruned one is an error.
linked=$(find "$APP" -type f \( -name '*.so' -o -name '*.so.*' \) -print0 |
  LD_LIBRARY_PATH="$APP/_internal" xargs -0 -n 50 ldd 2>/dev/null | grep '=>' || true)
missing=$(echo "$linked" | { grep 'not found' || true; } | awk '{print $1}' | sort -u)
needed=$(echo "$linked" | awk '{print $1}' | sort -u)
pruned=$("$VENV/bin/python" - <<'PY'
import ast
tree = ast.parse(open("packaging/sam2-annotator.spec").read())
for node in tree.body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "GTK_ONLY":
        print("\n".join(ast.literal_eval(node.value)))
PY
)
for lib in $missing; do
  echo "not on this machine (taken from the user's system): $lib"
done
for lib in $needed; do
  for prefix in $pruned; do
    case "$lib" in "$prefix"*)
      echo "a kept binary links $lib, which the spec prunes (GTK_ONLY)" >&2
      exit 1;;
    esac
  done
done
tar -C dist -czf "dist/sam2-annotator-$VERSION-linux-$ARCH.tar.gz" sam2-annotator

echo "== .deb"
PKG=build/deb/sam2-annotator_${VERSION}_$ARCH
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
         "$PKG/usr/share/icons/hicolor/256x256/apps" "$PKG/usr/share/icons/hicolor/scalable/apps"
cp -a "$APP" "$PKG/opt/sam2-annotator"
cat > "$PKG/usr/bin/sam2-annotator" <<'LAUNCHER'
#!/bin/sh
exec /opt/sam2-annotator/sam2-annotator "$@"
LAUNCHER
chmod 755 "$PKG/usr/bin/sam2-annotator"
install -m 644 resources/sam2-annotator.desktop "$PKG/usr/share/applications/"
install -m 644 resources/icons/sam2-annotator.png "$PKG/usr/share/icons/hicolor/256x256/apps/"
install -m 644 resources/icons/sam2-annotator.svg "$PKG/usr/share/icons/hicolor/scalable/apps/"
SIZE_KB=$(du -sk "$PKG" | cut -f1)
# Depends: the system libraries of Qt's X11 plugin (sam2_annotator/platform_check.py's
# XCB_PREREQUISITES; tests/test_platform_check.py checks that none is missing here).
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: sam2-annotator
Version: $VERSION
Section: graphics
Priority: optional
Architecture: $ARCH
Installed-Size: $SIZE_KB
Depends: libc6, libgl1, libegl1, libfontconfig1, libfreetype6, libxkbcommon0, libxkbcommon-x11-0, libdbus-1-3, libx11-6, libx11-xcb1, libxcb1, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render0, libxcb-render-util0, libxcb-shape0, libxcb-shm0, libxcb-sync1, libxcb-util1, libxcb-xfixes0, libxcb-xkb1
Maintainer: sam2-annotator developers <sam2-annotator@users.noreply.github.com>
Description: Click on objects, get exact SAM2 masks, save COCO annotations
 Segment Anything 2 running locally through ONNX Runtime (no PyTorch, no cloud).
 Self-contained: Python, Qt and ONNX Runtime are bundled under /opt/sam2-annotator.
CONTROL
dpkg-deb --root-owner-group --build "$PKG" "dist/sam2-annotator_${VERSION}_$ARCH.deb" >/dev/null

echo "== size per top-level entry of $APP/_internal (KiB; before stripping: $before_kb KiB in all)"
du -sk "$APP/_internal"/* | sort -n | tail -25
end=$(date +%s)
echo "== done in $((end - start)) s"
du -sh "$APP" "dist/sam2-annotator-$VERSION-linux-$ARCH.tar.gz" "dist/sam2-annotator_${VERSION}_$ARCH.deb"
