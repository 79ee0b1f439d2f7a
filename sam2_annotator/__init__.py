"""sam2-annotator: exact SAM2 masks on ONNX Runtime, saved as COCO.

The package is split so that only :mod:`sam2_annotator.gui` knows about Qt and only
:mod:`sam2_annotator.models.export` knows about torch.
"""

__version__ = "0.1.0"
