"""User-facing errors.

Every problem a user can cause (bad data, bad input, stale artifacts, an unreachable model source)
is raised as a `LookbookError` whose message is complete and specific on its own: the CLI prints it as
one line and exits non-zero, the app shows it with `st.error`. Anything else is a bug.
"""


class LookbookError(Exception):
    """Base class: the message is meant for the user, as is."""


class DataError(LookbookError):
    """The dataset folder is missing something or holds a malformed value (names file, line, column)."""


class ArtifactError(LookbookError):
    """A built artifact is missing, incomplete or was built from other data / another model."""


class InputError(LookbookError):
    """A query input is unusable: bad image, empty text, unknown id, unknown filter value."""


class ModelError(LookbookError):
    """A CLIP model could not be loaded from the requested source."""


class BuildRunningError(ArtifactError):
    """Another process holds the build lock of the artifacts folder (the message says who, since when)."""


class ConfigError(LookbookError):
    """A setting (environment variable or flag) has a value that is not allowed (names it and what is)."""
