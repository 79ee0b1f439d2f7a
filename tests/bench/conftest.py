"""Fixtures for the benchmark tests: precision variants of the shared random-init model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def int8_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam2_annotator.models.precision import convert_precision

    out = tmp_path_factory.mktemp("int8")
    convert_precision(model_dir, out, "int8")
    return out


@pytest.fixture(scope="session")
def groceries(shared_images: dict[str, Path]) -> np.ndarray:
    from sam2_annotator.engine.image_io import load_image

    return load_image(shared_images["groceries"])


@pytest.fixture(scope="session")
def groceries_embedding(engine, groceries: np.ndarray):
    return engine.encode(groceries)
