"""bertdrift: what happens to BERT embeddings during fine-tuning, re-run and extended."""

from __future__ import annotations

from bertdrift.config import PROFILES, Profile, get_profile
from bertdrift.errors import BertdriftError, ConfigError, DataError, ModelError

__version__ = "0.1.0"

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
