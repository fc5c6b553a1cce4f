"""Errors a user can act on: each carries a one-line message that names the problem."""


class SantanderError(Exception):
    """Base for every error the CLI reports as one line and a non-zero exit."""


class DataError(SantanderError):
    """The input data does not fit the Santander schema or cannot be read."""


class ExportError(SantanderError):
    """A model version could not be written to the repository."""


class ArtifactError(SantanderError):
    """A model version on disk cannot be read: missing, damaged, or of an unknown format."""


class VersionError(SantanderError):
    """An unknown version, or a server that refused a repository call."""
