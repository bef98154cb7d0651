"""Give memory that was freed back to the operating system.

glibc keeps what Python, numpy and torch free in its own free lists, where it still
counts in the process's memory: after a switch between the sample models, the old
model's weights, history and the views' arrays were free but 15-35 MB of them stayed
resident (measured here). ``malloc_trim`` hands such pages back (0.3-4 ms). With another
C library (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked_up = False


def give_back_freed_memory() -> bool:
    """Return free heap pages to the system; True if any were (glibc only)."""
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                _trim = ctypes.CDLL(None).malloc_trim  # the C library already loaded
            except (OSError, AttributeError):
                _trim = None
    return bool(_trim(0)) if _trim is not None else False
