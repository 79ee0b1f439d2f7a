"""Benchmark (not a timed test): how long one accept blocks the editing (GUI) thread on a
2,000-annotation project, with the synchronous autosave of round 1 and with the background saver.

Run ``pytest tests/annotations/test_accept_benchmark.py --benchmark-enable``; under the default
``--benchmark-disable`` each case runs once and its assertions check that the accept did its work.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations.store import ProjectStore
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, blob, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

ANNOTATIONS = 2000
SHAPE = (480, 640)


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    store = ProjectStore.create(folder / "project.json", autosave=False)
    rng = np.random.default_rng(0)
    masks = [blob(rng, *SHAPE, parts=2) for _ in range(20)]
    for index in range(ANNOTATIONS // 20):
        image = store.add_image(
            write_png(folder / f"{index:03d}.png", SHAPE[1], SHAPE[0]), *SHAPE[::-1]
        )
        for mask in masks:
            store.add_annotation(image.id, 1 if index else store.add_category("thing").id, mask)
    store.save()
    return store.path


def _accept(store: ProjectStore, mask: np.ndarray) -> None:
    """One accept with a new label, as the window does it (one transaction)."""
    with store.transaction():
        category = store.add_category(f"label {len(store.project.categories)}")
        store.add_annotation(1, category.id, mask)


@pytest.mark.parametrize("mode", ["synchronous", "background"])
def test_gui_thread_block_per_accept(benchmark, big_project: Path, tmp_path: Path, mode) -> None:
    path = tmp_path / "project.json"
    path.write_bytes(big_project.read_bytes())
    for png in big_project.parent.glob("*.png"):
        (tmp_path / png.name).symlink_to(png)
    store = ProjectStore.open(path, check_images=False)
    assert len(store.project.annotations) == ANNOTATIONS
    if mode == "background":
        store.use_background_saver()
    mask = blob(np.random.default_rng(1), *SHAPE)
    benchmark.extra_info["annotations"] = ANNOTATIONS
    benchmark.pedantic(_accept, args=(store, mask), rounds=10 if benchmark.enabled else 1)
    store.close()
    saved = json.loads(path.read_text())
    assert len(saved["annotations"]) > ANNOTATIONS
    assert len(saved["annotations"]) == len(store.project.annotations)
