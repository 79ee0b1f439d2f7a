#!/usr/bin/env python3
"""Build the exact-model release: Meta's checkpoints -> our ONNX exports (fp32, int8) -> parity
against PyTorch -> zip archives with sha256 and size -> catalog entries.

Needs the export extra (torch + sam2). Examples::

    python packaging/release_models.py --families sam2.1 --sizes tiny \\
        --images ../shared/data/images --work build/release-work --out dist/models \\
        --repo OWNER/sam2-annotator-models
    python packaging/release_models.py pin dist/models/catalog-entries.json --revision COMMIT

Exit 0 on success, 1 with one ``error:`` line (failed download, export or parity). All the work
is :mod:`sam2_annotator.models.release`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_annotator.models.release import main

if __name__ == "__main__":
    raise SystemExit(main())
