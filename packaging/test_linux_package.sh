#!/usr/bin/env bash
# Packaging test (run by .ci/run): build the Linux bundle from a clean venv, check the frozen
# binary's --self-test with a random-init model, install the .deb, run the installed launcher's
# --self-test, uninstall and check that nothing is left behind.
#   MODEL=DIR   model folder for the self-test (default: export a random-init hiera-tiny with the
#               project venv, which has the export extra after `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=build/selftest-model
  if [ ! -f "$MODEL/manifest.json" ]; then
    .venv/bin/sam2-annotator models export --config sam2.1_hiera_t --random-init --out "$MODEL"
  fi
fi

bash packaging/build_linux.sh

echo "== frozen binary self-test"
QT_QPA_PLATFORM=offscreen dist/sam2-annotator/sam2-annotator --self-test --model "$MODEL"

DEB=$(ls dist/sam2-annotator_*.deb)
echo "== install $DEB"
if [ "$(id -u)" != 0 ]; then echo "installing the .deb needs root; skipped" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "./$DEB" >/dev/null 2>&1 || {
  apt-get update -qq && apt-get install -y -qq "./$DEB" >/dev/null
}
test -x /opt/sam2-annotator/sam2-annotator
test -f /usr/share/applications/sam2-annotator.desktop
echo "== installed launcher self-test"
QT_QPA_PLATFORM=offscreen sam2-annotator --self-test --model "$MODEL"

echo "== uninstall"
apt-get remove -y -qq sam2-annotator >/dev/null
if [ -e /opt/sam2-annotator ] || [ -e /usr/bin/sam2-annotator ] \
   || [ -e /usr/share/applications/sam2-annotator.desktop ]; then
  echo "files left behind after uninstall" >&2
  exit 1
fi
echo "packaging test OK"
