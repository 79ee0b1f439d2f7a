"""The desktop annotator (PySide6). Only this package imports Qt.

:mod:`.app` starts it; :mod:`.worker` runs the model off the GUI thread; :mod:`.canvas` shows the
image, prompts and masks; :mod:`.main_window` ties them to the project store.
"""

from sam2_annotator.gui._compat import guard_none_refcount

guard_none_refcount()
