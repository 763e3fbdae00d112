"""Bearer tokens with roles `read` and `write` (write includes read).

Tokens come from a file (`--api-tokens FILE`, YAML or JSON: a list of `{name, role, token}`
or `{name, role, sha256}` to keep the secret itself off the disk, each optionally scoped to
some zones with `zones: [NAME, "*.NAME"]`) and from the environment
(`GSLB_API_TOKENS="name:role:token,..."`). Only SHA-256 digests are kept in memory; a
presented token is hashed and compared with every known digest in constant time, so neither
timing nor an early exit tells how close a guess was. Tokens are never logged: the audit log
and the logs name the token's `name`.

When nothing is configured, `gslb serve` and `gslb api` make one write token, keep it in
`DATA_DIR/api-token` (mode 0600) and say where it is: writes always need a token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

Role = Literal["read", "write"]
ROLES: tuple[Role, ...] = ("read", "write")
ENV = "GSLB_API_TOKENS"
LOCAL_TOKEN_FILE = "api-token"
LOCAL_NAME = "local-admin"


class TokenConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    # The zones this token may touch: names, or `*.NAME` for every zone below NAME; None:
    # every zone (a token of the tokens file with `zones: [...]` is scoped).
    zones: tuple[str, ...] | None = None

    def may(self, role: Role) -> bool:
        return role == "read" or self.role == "write"

    def covers(self, zone: str) -> bool:
        if self.zones is None:
            return True
        zone = zone.lower().rstrip(".")
        for scope in self.zones:
            if scope.startswith("*."):
                if zone.endswith("." + scope[2:]):
                    return True
            elif zone == scope:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Known:
    digest: bytes
    principal: Principal


class Tokens:
    def __init__(self, known: list[tuple[bytes, Principal]], read_open: bool = False) -> None:
        self._known = [_Known(d, p) for d, p in known]
        self.read_open = read_open

    def __len__(self) -> int:
        return len(self._known)

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known in self._known:  # no early exit: every digest is compared
            if hmac.compare_digest(digest, known.digest):
                found = known.principal
        return found


def _entry(item: object, where: str) -> tuple[bytes, Principal]:
    if not isinstance(item, dict):
        raise TokenConfigError(f"{where}: give {{name, role, token}} or {{name, role, sha256}}")
    name, role = item.get("name"), item.get("role")
    if not isinstance(name, str) or not name:
        raise TokenConfigError(f"{where}.name: required")
    if role not in ROLES:
        raise TokenConfigError(f"{where}.role: read or write")
    zones = _zones(item.get("zones"), where)
    token, digest = item.get("token"), item.get("sha256")
    if isinstance(token, str) and len(token) >= 16:
        return hashlib.sha256(token.encode()).digest(), Principal(name, role, zones)
    if isinstance(digest, str):
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw, Principal(name, role, zones)
        raise TokenConfigError(f"{where}.sha256: 64 hex digits")
    raise TokenConfigError(f"{where}.token: a secret of at least 16 characters")


def _zones(value: object, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(z, str) and z for z in value):
        raise TokenConfigError(f"{where}.zones: a list of zone names (or *.NAME)")
    return tuple(z.strip().lower().rstrip(".") for z in value)


def load(
    path: Path | None,
    environ: dict[str, str] | os._Environ[str] = os.environ,
    read_open: bool = False,
) -> Tokens:
    known: list[tuple[bytes, Principal]] = []
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise TokenConfigError(f"{path}: {e}") from None
        if isinstance(data, dict) and "tokens" in data:
            data = data["tokens"]
        if not isinstance(data, list):
            raise TokenConfigError(f"{path}: a list of tokens")
        known += [_entry(item, f"{path}: [{i}]") for i, item in enumerate(data)]
    for i, text in enumerate(t for t in environ.get(ENV, "").split(",") if t.strip()):
        name, _, rest = text.strip().partition(":")
        role, _, token = rest.partition(":")
        known.append(_entry({"name": name, "role": role, "token": token}, f"{ENV}[{i}]"))
    return Tokens(known, read_open)


def local_token(data_dir: Path) -> tuple[str, Path]:
    """The node's own write token, made once and kept in the data directory."""
    path = data_dir / LOCAL_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), path
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, path


def with_local(tokens: Tokens, token: str) -> Tokens:
    known = [(k.digest, k.principal) for k in tokens._known]
    known.append((hashlib.sha256(token.encode()).digest(), Principal(LOCAL_NAME, "write")))
    return Tokens(known, tokens.read_open)
