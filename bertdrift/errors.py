"""One family of errors, each message saying what to do next."""

from __future__ import annotations


class BertdriftError(Exception):
    """Base class of every error bertdrift raises on purpose."""


class ConfigError(BertdriftError, ValueError):
    """A profile name, override or setting is invalid."""


class DataError(BertdriftError):
    """A data file is missing or malformed."""


class MissingDataError(DataError):
    """A data file is in neither the data directory nor the cache and cannot be downloaded
    here (no official URL, downloads off, or the download failed)."""


class ModelError(BertdriftError):
    """A model could not be loaded."""


class CacheError(BertdriftError, OSError):
    """The cache folder (``BERTDRIFT_CACHE``) cannot be written: read-only, missing or full."""
