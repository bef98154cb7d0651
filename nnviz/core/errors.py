"""Errors the core raises for problems a user can fix; the CLI and GUI show their message."""


class NnvizError(Exception):
    """A problem with a clear, user-facing message."""


class DataError(NnvizError):
    """A data file or source is missing, malformed or of the wrong kind."""


class DownloadError(NnvizError):
    """A download failed on every mirror, or its checksum did not match."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download."""


class ModelFileError(NnvizError):
    """A model file is unreadable, unsafe, truncated or of an unknown kind."""


class SpecError(NnvizError):
    """An architecture spec is invalid."""


class TrainingError(NnvizError):
    """Training could not go on (for example the loss became NaN)."""
