"""DNSSEC keys kept in files instead of the state store (`dnssec: {keys: DIR}`,
docs/dnssec.md).

A zone document names a directory; each node finds it under its own key root
(`--dnssec-key-dir`), so the document can never point a node at a path of its choosing. Every
`*.pem` file there is one private key, and every key signs and is published: adding a second
file starts a double-signature rollover, removing the older one ends it. gslb only reads the
directory. A directory that cannot be read whole is refused whole, with the file and the
reason, and the node keeps signing with the keys it held.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gslb.core.dnssec import ALGORITHMS, SigningKey

if TYPE_CHECKING:
    from gslb.state.store import Store

MAX_KEY_FILES = 4  # more keys than a rollover needs twice over is a mistake, not a setup
MAX_KEY_FILE_BYTES = 16 * 1024  # a PEM private key is a few hundred octets


class KeyDirError(Exception):
    """A key directory refused: the message names the file and the reason."""


async def zone_keys(
    store: Store, root: Path | None, zone: str, algorithm: str, key_dir: str | None
) -> tuple[SigningKey, ...]:
    """The keys a zone signs with: the cluster's, from the state store (made on first use),
    or, when its document names a key directory, those in `root/key_dir` (KeyDirError when
    they cannot be used: the state store's own errors are not this)."""
    if key_dir is None:
        return await store.dnssec_keys(zone, algorithm)
    if root is None:
        raise KeyDirError("this node has no --dnssec-key-dir")
    try:
        return await asyncio.to_thread(read_key_dir, root, key_dir, algorithm)
    except OSError as e:
        raise KeyDirError(f"{root / key_dir}: {e}") from None


def read_key_dir(root: Path, name: str, algorithm: str) -> tuple[SigningKey, ...]:
    """The keys in `root/name`, oldest first (by modification time, then file name)."""
    base = root.resolve()
    directory = (base / name).resolve()
    if not directory.is_relative_to(base) or directory == base:
        raise KeyDirError(f"{base / name}: leads outside the key directory {base}")
    if not directory.is_dir():
        raise KeyDirError(f"{directory}: no such directory (dnssec: keys: {name})")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".pem")
    if not files:
        raise KeyDirError(f"{directory}: holds no key (*.pem)")
    if len(files) > MAX_KEY_FILES:
        raise KeyDirError(f"{directory}: {len(files)} key files, more than {MAX_KEY_FILES}")
    found: list[tuple[float, str, SigningKey]] = []
    for path in files:
        info = path.stat()  # a link is followed, and must stay inside the root as well
        if not path.resolve().is_relative_to(base):
            raise KeyDirError(f"{path}: leads outside the key directory {base}")
        if not stat.S_ISREG(info.st_mode):
            raise KeyDirError(f"{path}: not a regular file")
        if info.st_mode & 0o077:
            # As ssh does for its keys: a private key others may read is a key others have.
            raise KeyDirError(
                f"{path}: readable or writable by others (mode {stat.S_IMODE(info.st_mode):o});"
                " chmod 600 it"
            )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise KeyDirError(f"{path}: {info.st_size} octets, more than {MAX_KEY_FILE_BYTES}")
        try:
            key = SigningKey.from_pem(path.read_bytes(), created=info.st_mtime)
        except ValueError as e:
            raise KeyDirError(f"{path}: {e}") from None
        if key.algorithm != ALGORITHMS[algorithm]:
            raise KeyDirError(f"{path}: not an {algorithm} key, as the zone's dnssec: says")
        found.append((info.st_mtime, path.name, key))
    return tuple(key for _, _, key in sorted(found, key=lambda f: (f[0], f[1])))


def write_key_file(path: Path, key: SigningKey) -> None:
    """A new key file, readable by its owner only; an existing file is never replaced. It
    appears whole: a node reading the directory meanwhile never sees half a key."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # not *.pem: not read
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key.pem())
        os.link(partial, path)  # as O_EXCL: fails if the file is there
    finally:
        partial.unlink()
