"""Pausing the cyclic garbage collector around bulk building."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0  # how many callers (threads, coroutines) want it paused now
_was_enabled = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a zone is compiled or read: building a zone creates
    hundreds of thousands of objects and no cycles, and the collector would otherwise scan the
    growing heap again and again. Pauses nest and overlap (a compile in a thread while the loop
    reads everything): the collector comes back when the last of them ends."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
