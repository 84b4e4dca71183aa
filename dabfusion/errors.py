"""Errors that tell a user which input was wrong and what to do about it.

Every error raised on purpose by this package derives from :class:`DabFusionError`, so callers
(the ComfyUI nodes, the CLI) can show its message as is instead of a traceback.
"""


class DabFusionError(Exception):
    """Base class for errors whose message is meant for the user."""


class MediaError(DabFusionError, ValueError):
    """An audio, image or video input could not be read or written; the message names the input."""


class DataError(DabFusionError, ValueError):
    """A data set on disk does not have the expected layout or names."""


class ModelFileError(DabFusionError, FileNotFoundError):
    """A model weight file is missing or is not the expected kind of file.

    The message names the file, the folder to put it in, and where it comes from.
    """


class ConfigMismatchError(DabFusionError, ValueError):
    """A checkpoint's recorded configuration does not match what the caller asked for."""
