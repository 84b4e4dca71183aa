"""Errors that tell a user which input was wrong and what to do about it.

Every error raised on purpose by this package derives from :class:`DabFusionError`, so callers
(the ComfyUI nodes, the CLI) can show its message as is instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

#: exit status of the command-line tools when the input was wrong (argparse uses 2 as well)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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


class BeatGridError(DabFusionError, ValueError):
    """A beat grid edit cannot be made: a beat list (file or text) that is empty, unsorted, not numbers or
    outside the music (the message names the file and the line), or an edit that leaves no grid."""


class ConfigMismatchError(DabFusionError, ValueError):
    """A checkpoint's recorded configuration does not match what the caller asked for."""


def call_for_cli(fn: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """``(0, fn(*args))``, or ``(exit status, None)`` after one line on stderr: a
    :class:`DabFusionError` prints its message (status 2), Ctrl-C prints "interrupted" (130)."""
    try:
        return 0, fn(*args)
    except DabFusionError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR, None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED, None
