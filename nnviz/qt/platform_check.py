"""Before Qt starts on X11: are the system libraries its X11 plugin needs there?

When one is missing, Qt prints a long message and aborts the process (it cannot be
caught from Python). A fresh Debian or Ubuntu lacks three of them: libxcb-cursor0,
libxcb-icccm4 and libxcb-keysyms1. This module needs no Qt, so the command line can ask
before it imports PySide6.
"""

from __future__ import annotations

import ctypes
import os
import sys

# The shared libraries Qt 6.11's X11 plugin (libQt6XcbQpa) loads, and the Debian/Ubuntu
# package of each.
X11_PLUGIN_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
}


def uses_x11(environ: dict[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether Qt will pick its X11 plugin: on Linux, asked for by QT_QPA_PLATFORM, or
    not told and on an X display without Wayland."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return False
    asked = env.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(":")[0].split(";")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_libraries(names: dict[str, str] = X11_PLUGIN_LIBRARIES) -> list[str]:
    """The packages of the libraries in ``names`` that cannot be loaded."""
    missing = []
    for library, package in names.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    return missing


def x11_problem(environ: dict[str, str] | None = None) -> str | None:
    """One line saying what to install when Qt's X11 plugin would fail, else None."""
    if not uses_x11(environ):
        return None
    missing = missing_libraries()
    if not missing:
        return None
    names = " ".join(missing)
    return (
        f"Qt cannot open a window on X11: the system lacks {', '.join(missing)}. "
        f"Install {'it' if len(missing) == 1 else 'them'} with: sudo apt-get install {names}"
    )
