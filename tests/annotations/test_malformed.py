"""Every malformed COCO input gives one clear ProjectError, never another exception or a write."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2_annotator.annotations.coco_io import ProjectFormatError
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import ProjectError
from tests.annotations.helpers import MEASURED, PYCOCOTOOLS_NUMPY2_WARNING, snapshot
from tests.annotations.malformed import all_cases

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

CASES = all_cases()


def test_there_are_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50
    MEASURED["malformed inputs -> ProjectError, nothing written"] = len(CASES)


@pytest.mark.parametrize(("name", "raw", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path, name: str, raw: bytes, fragment: str
) -> None:
    path = tmp_path / "project.json"
    path.write_bytes(raw)
    before = snapshot(tmp_path)
    with pytest.raises(ProjectError) as caught:
        store = ProjectStore.open(path, check_images=False)
        store.save()  # only reached if open wrongly succeeded
    error = caught.value
    message = str(error)
    assert isinstance(error, ProjectFormatError)
    assert fragment in message, message
    assert "\n" not in message and str(path) in message
    assert snapshot(tmp_path) == before


def test_many_problems_are_listed_together_with_a_count(tmp_path: Path) -> None:
    import json

    from tests.annotations.helpers import minimal_coco

    data = minimal_coco()
    data["images"] = [{"id": i, "file_name": "", "width": 1, "height": 1} for i in range(25)]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectFormatError) as caught:
        ProjectStore.open(path, check_images=False)
    error = caught.value
    assert error.total == 27  # 25 bad file names + 2 annotations pointing at image 1
    assert "27 problems" in str(error) and "and 17 more" in str(error)
    assert error.problems[0].startswith("images[0] (id 0)")


#: Replacement values for the fuzz test: wrong types, edge numbers, odd shapes.
FUZZ_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    1.5,
    1e20,
    10**30,
    10**400,
    "",
    "1",
    [],
    {},
    [1],
    [[1]],
    [1, 2, 3, 4],
    [[0, 0, 1e30, 0, 1e30, 1e30]],
    {"size": [8, 10], "counts": "0"},
    {"size": [8, 10], "counts": [2**62, 2**62]},
]


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


def test_random_mutations_raise_nothing_but_project_error(tmp_path: Path) -> None:
    """Fuzz: 1-3 random values replaced or keys removed; loading and saving never crash."""
    import copy
    import random

    from sam2_annotator.annotations.coco_io import dumps, parse_coco, project_to_coco
    from tests.annotations.helpers import minimal_coco

    rng = random.Random(1)
    paths = [p for p in _paths(minimal_coco()) if p]
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(3000):
        data = minimal_coco()
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(paths)
            node = data
            try:
                for key in parents:
                    node = node[key]
                if isinstance(node, dict) and rng.random() < 0.2:
                    node.pop(last, None)
                else:
                    node[last] = copy.deepcopy(rng.choice(FUZZ_VALUES))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation changed the shape; fine
        try:
            project, _report = parse_coco(data, root=tmp_path, check_images=False)
        except ProjectError:
            outcomes["refused"] += 1
            continue
        for segmentation in ("rle", "polygon"):
            dumps(project_to_coco(project, segmentation=segmentation)[0])
        outcomes["loaded"] += 1
    assert outcomes["loaded"] > 100 and outcomes["refused"] > 1000
