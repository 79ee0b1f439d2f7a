"""Benchmarks and accuracy evaluation behind ``sam2-annotator bench`` and ``eval``.

Reproduces section 4 of "Deploying Vision Foundation AI Models on the Edge. The SAM2 Experience":
latency (first call vs steady state, per image, per number of points, engine vs bare
``session.run``, ONNX Runtime vs PyTorch eager), memory, and mask accuracy against ground truth
and between two models. torch is only imported inside the functions of
:mod:`~sam2_annotator.models.export_reference` (export-time code), for the optional PyTorch column.
"""
