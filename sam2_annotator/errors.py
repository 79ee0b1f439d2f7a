"""Typed errors for problems the user can fix.

Anything derived from :class:`UserError` is shown as one clear line (CLI) or a message box (GUI),
never as a traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, files or environment, described in plain words."""


class ImageLoadError(UserError):
    """An image could not be read or is not usable."""


class ModelError(UserError):
    """A model folder or ONNX file is missing, broken or of an unknown contract."""


class PromptError(UserError):
    """Points, boxes or mask inputs that cannot be used with the current image."""


class DownloadError(UserError):
    """A model download failed or did not verify."""


class ProjectError(UserError):
    """A project (COCO) file cannot be read or written."""


class OperationCancelled(UserError):
    """A long operation was cancelled on request."""
