"""The Redis connection every role opens, and the errors that mean "Redis is away"."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.sentinel import Sentinel

# What a lost or refused connection raises: the caller keeps going on what it has.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client for `redis://`, `rediss://` (TLS), `unix://` or `redis+sentinel://` URLs.

    Sentinel: `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`; the
    client follows the master that the sentinels name, across failovers.
    """
    defaults: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 3}
    defaults.update(options)
    if url.startswith("redis+sentinel://"):
        parsed = urllib.parse.urlsplit(url)
        hosts = []
        for item in parsed.netloc.rpartition("@")[2].split(","):
            host, _, port = item.rpartition(":")
            hosts.append((host.strip("[]") or "localhost", int(port or 26379)))
        parts = [p for p in parsed.path.split("/") if p]
        if not parts:
            raise ValueError(f"{url}: a Sentinel URL names the service: .../SERVICE[/DB]")
        service = parts[0]
        db = int(parts[1]) if len(parts) > 1 else 0
        password = urllib.parse.unquote(parsed.password) if parsed.password else None
        sentinel = Sentinel(hosts, sentinel_kwargs={"password": password}, **defaults)  # type: ignore[no-untyped-call, unused-ignore]  # redis < 8.2 is untyped
        master: aioredis.Redis = sentinel.master_for(service, db=db, password=password)
        return master
    client: aioredis.Redis = aioredis.Redis.from_url(url, **defaults)
    return client


SECRET_PARAMETERS = frozenset({"password", "pass", "sentinel_password", "ssl_password"})


def redacted(url: str) -> str:
    """The URL without its secrets, for logs: the password of the user part and of the query
    (`?password=`, which redis-py reads too). The rest is left as written."""
    base, question, query = url.partition("?")
    scheme, sep, rest = base.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at:
        user = userinfo.partition(":")[0]
        base = f"{scheme}{sep}{user}:***@{hosts}" if user else f"{scheme}{sep}***@{hosts}"
    pairs = []
    for pair in query.split("&") if query else []:
        key, equals, _value = pair.partition("=")
        secret = urllib.parse.unquote(key).lower() in SECRET_PARAMETERS
        pairs.append(f"{key}{equals}***" if secret and equals else pair)
    return base + question + "&".join(pairs)


def refused_credentials(error: BaseException) -> bool:
    """Whether Redis turned us away for our credentials (a wrong or missing password), which
    no retry will mend: worth saying so, not just "unreachable"."""
    if isinstance(error, redis.exceptions.AuthenticationError):
        return True
    text = str(error)
    return any(word in text for word in ("NOAUTH", "WRONGPASS", "invalid password", "auth failed"))
