"""Files at rest: a node's data directory is its own (0700), and so are the files in it."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077  # files a node makes: 0600; directories: 0700


def private_dir(path: Path) -> Path:
    """`path` made (with its parents) or tightened to mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def keep_private() -> None:
    """From now on, what this process and its children make is theirs alone: the embedded
    Redis's append-only files, the snapshot kept on disk, the API token."""
    os.umask(PRIVATE_UMASK)
