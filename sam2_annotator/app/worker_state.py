"""The inference worker's scheduling constants and the records of the image it works on (what its
two lanes read and write under its lock). Qt-free; used by :mod:`sam2_annotator.gui.worker`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from sam2_annotator.engine.predictor import CancelToken
from sam2_annotator.engine.types import EMBEDDING_SHAPES, Embedding

#: Bytes of one float32 embedding: sizes the prefetch window before the first one exists.
EMBEDDING_BYTES = 4 * sum(math.prod(shape) for shape in EMBEDDING_SHAPES.values())
#: How long the prefetch waits, on an image reached already encoded, for its first click to
#: decode alone (a prefetch encode beside it doubled the decode on 2 cores: docs/BENCHMARKS.md).
FIRST_CLICK_GRACE_S = 1.0
#: Default memory budget for embeddings (about 30 images).
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024


@dataclass
class Current:
    """The image on screen: its pixels once loaded, its embedding once encoded."""

    path: str
    rgb: np.ndarray | None = None
    key: str | None = None
    embedding: Embedding | None = None
    load_failed: bool = False
    arrived: float = field(default_factory=time.monotonic)
    #: Reached already encoded (in memory or on disk) and not decoded yet: the prefetch waits
    #: (see FIRST_CLICK_GRACE_S).
    first_click_pending: bool = False
    #: The disk cache was looked up by the file's key hint (at most once per visit), see
    #: :mod:`~sam2_annotator.engine.cache_sources`.
    hint_tried: bool = False

    def awaits(self, path: str, key: str | None) -> bool:
        """Whether this is ``path``, its pixels hashed to ``key``, and it has no embedding yet."""
        return self.path == path and self.key == key and self.embedding is None


@dataclass(frozen=True)
class ActiveEncode:
    path: str
    token: CancelToken
    for_current: bool
