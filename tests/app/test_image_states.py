"""The observed per-image state: updates, hidden ids, filters and counts."""

from __future__ import annotations

from pathlib import Path

from sam2_annotator.app.image_states import ImageFilter, ImageStates, initial_states


def test_states_notify_filter_and_count() -> None:
    states = ImageStates()
    heard: list[tuple[str, object]] = []
    resets: list[int] = []
    states.listeners.append(lambda path, state: heard.append((path, state)))
    states.reset_listeners.append(lambda: resets.append(1))
    paths = [Path("/d/cat.jpg"), Path("/d/dog.jpg"), Path("/d/Cathedral.png")]
    states.reset(initial_states(paths, [2, 0, 0], [(True, False), (False, False), (False, True)]))
    assert resets == [1]
    states.update("/d/dog.jpg", embedding="ready")
    states.update("/d/dog.jpg", embedding="ready")  # no change: no notification
    assert [p for p, _ in heard] == ["/d/dog.jpg"]
    states.set_hidden("/d/cat.jpg", 5, True)
    assert states.is_hidden("/d/cat.jpg", 5) and not states.is_hidden("/d/dog.jpg", 5)
    states.set_hidden("/d/cat.jpg", 5, False)
    assert not states.is_hidden("/d/cat.jpg", 5)
    assert states.visible_paths(ImageFilter(text="CAT")) == ["/d/cat.jpg", "/d/Cathedral.png"]
    assert states.visible_paths(ImageFilter(unannotated_only=True)) == [
        "/d/dog.jpg",
        "/d/Cathedral.png",
    ]
    assert states.visible_paths(ImageFilter(flagged_only=True)) == [
        "/d/cat.jpg",
        "/d/Cathedral.png",
    ]
    summary = states.summary()
    assert (summary.images, summary.annotated, summary.done, summary.review) == (3, 1, 1, 1)
    assert summary.text() == "1/3 annotated · 1 done · 1 to review · 2 objects"
