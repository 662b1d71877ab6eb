"""bertdrift: what happens to BERT embeddings during fine-tuning, re-run and extended."""

from __future__ import annotations

from bertdrift.about import version as _version
from bertdrift.config import PROFILES, Profile, get_profile
from bertdrift.errors import BertdriftError, ConfigError, DataError, ModelError

__version__ = _version()
"""The package's version, from ``pyproject.toml`` (``bertdrift.about``)."""

__all__ = [
    "PROFILES",
    "BertdriftError",
    "ConfigError",
    "DataError",
    "ModelError",
    "Profile",
    "get_profile",
    "__version__",
]
