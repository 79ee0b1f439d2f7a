# Build the Windows app from a clean venv with runtime dependencies only, then the installer.
# dist\sam2-annotator\ holds sam2-annotator.exe (windowed) and sam2-annotator-cli.exe (console).
#   $env:ORT = "cpu" | "gpu"   (onnxruntime or onnxruntime-gpu; DirectML: "directml")
#   $env:SAM2A_MODEL_DIR       a model folder to bundle (optional)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$venv = "build\pack-venv"
if (Test-Path $venv) { Remove-Item -Recurse -Force $venv }
python -m venv $venv
& "$venv\Scripts\python" -m pip install -q --upgrade pip wheel
& "$venv\Scripts\python" -m pip install -q . pyinstaller
switch ($env:ORT) {
  "gpu"      { & "$venv\Scripts\python" -m pip uninstall -q -y onnxruntime; & "$venv\Scripts\python" -m pip install -q onnxruntime-gpu }
  "directml" { & "$venv\Scripts\python" -m pip uninstall -q -y onnxruntime; & "$venv\Scripts\python" -m pip install -q onnxruntime-directml }
}
$env:SAM2A_WINDOWED = "1"
& "$venv\Scripts\pyinstaller" --noconfirm --clean --workpath build\pyinstaller --distpath dist packaging\sam2-annotator.spec
# The windowed app and its console twin (the spec adds sam2-annotator-cli.exe for windowed builds)
foreach ($exe in "sam2-annotator.exe", "sam2-annotator-cli.exe") {
  if (-not (Test-Path "dist\sam2-annotator\$exe")) { throw "PyInstaller did not produce dist\sam2-annotator\$exe" }
}
$version = & "$venv\Scripts\python" -c "import sam2_annotator; print(sam2_annotator.__version__)"
iscc /DAppVersion=$version packaging\windows\installer.iss
