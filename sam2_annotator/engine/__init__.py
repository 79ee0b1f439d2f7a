"""The SAM2 engine on ONNX Runtime. Never imports Qt or torch."""
