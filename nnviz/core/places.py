"""Where nnviz keeps the user's things, and which files it must never write over.

The sample models ship inside the package: saving over one would change every later
start of the app (and of anyone else's, on a shared install), so they open read-only,
like any file the user may not write.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import platformdirs

DATA_ENV = "NNVIZ_DATA_DIR"  # overrides the per-user data folder (tests, portable installs)


def data_dir() -> Path:
    """nnviz's per-user data folder: $NNVIZ_DATA_DIR if set, else the platform's own."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("nnviz"))


def sample_folder() -> Path:
    """The folder of the sample models installed with the package."""
    return Path(str(files("nnviz.sample_models")))


def is_sample(path: str | Path) -> bool:
    """True for a file inside the package's sample folder."""
    try:
        return Path(path).resolve().is_relative_to(sample_folder().resolve())
    except (OSError, ValueError):
        return False


def is_read_only(path: str | Path) -> bool:
    """True where a save must not go: a sample, or a file (or its folder) the user may
    not write. An atomic save writes a temporary file beside the target, so the folder
    must be writable too."""
    path = Path(path)
    if is_sample(path):
        return True
    if path.exists() and not os.access(path, os.W_OK):
        return True
    folder = path.parent
    return folder.exists() and not os.access(folder, os.W_OK)
