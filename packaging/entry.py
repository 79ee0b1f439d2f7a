"""Entry point of the frozen app.

onnxruntime is imported before PySide6: on Windows both ship DLLs with the same names (e.g. the
MSVC runtime) and whichever loads first wins; ORT's must (labelme does the same).
"""

import sys

import onnxruntime  # noqa: F401  (DLL load order, see above)

from sam2_annotator.cli import main

if __name__ == "__main__":
    sys.exit(main())
