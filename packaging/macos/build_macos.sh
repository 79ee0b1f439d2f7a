#!/usr/bin/env bash
# Build "SAM2 Annotator.app" from a clean venv (runtime dependencies only) and wrap it in a .dmg.
#   SAM2A_MODEL_DIR=DIR   a model folder to bundle (optional)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=build/pack-venv
rm -rf "$VENV" build/pyinstaller "dist/SAM2 Annotator.app" dist/sam2-annotator
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip wheel
"$VENV/bin/pip" install -q . pyinstaller
SAM2A_WINDOWED=1 "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --workpath build/pyinstaller --distpath dist packaging/sam2-annotator.spec
VERSION=$("$VENV/bin/python" -c "import sam2_annotator; print(sam2_annotator.__version__)")
STAGE=build/dmg
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -R "dist/SAM2 Annotator.app" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "SAM2 Annotator" -srcfolder "$STAGE" -ov -format UDZO \
  "dist/sam2-annotator-$VERSION-macos-$(uname -m).dmg"
