"""Before Qt starts on X11: a missing system library is named with the command that
installs it, instead of Qt's abort."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnviz.qt import platform_check
from nnviz.qt.platform_check import X11_PLUGIN_LIBRARIES, missing_libraries, uses_x11, x11_problem


def test_which_platform_qt_will_pick():
    assert uses_x11({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_x11({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_x11({"QT_QPA_PLATFORM": "offscreen:configfile=x.json"}, "linux")
    assert uses_x11({"DISPLAY": ":0"}, "linux")
    assert not uses_x11({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not uses_x11({}, "linux")
    assert not uses_x11({"QT_QPA_PLATFORM": "xcb"}, "darwin")


def test_a_library_that_cannot_load_is_named_by_its_package():
    names = {"libc.so.6": "libc6", "libnnviz-no-such-library.so.9": "libnnviz-none9"}
    assert missing_libraries(names) == ["libnnviz-none9"]


def test_the_message_names_the_packages_and_the_install_command(monkeypatch):
    monkeypatch.setattr(
        platform_check, "missing_libraries", lambda: ["libxcb-cursor0", "libxcb-icccm4"]
    )
    message = x11_problem({"QT_QPA_PLATFORM": "xcb"})
    assert "libxcb-cursor0, libxcb-icccm4" in message
    assert message.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4")
    assert "\n" not in message
    assert x11_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_nnviz_says_what_to_install_and_exits_1_when_a_library_is_missing(tmp_path):
    """A real missing library: the check is pointed at a name no system has."""
    script = (
        "import sys\n"
        "from nnviz.qt import platform_check\n"
        "platform_check.X11_PLUGIN_LIBRARIES = {'libxcb-nnviz-missing.so.0': 'libxcb-nnviz0'}\n"
        "platform_check.missing_libraries.__defaults__ = (platform_check.X11_PLUGIN_LIBRARIES,)\n"
        "from nnviz.cli import main\n"
        "sys.exit(main(['gui']))\n"
    )
    env = {"QT_QPA_PLATFORM": "xcb", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "nnviz: error: Qt cannot open a window on X11: the system lacks libxcb-nnviz0. "
        "Install it with: sudo apt-get install libxcb-nnviz0"
    ]
    assert "PySide6" not in result.stdout


def test_every_listed_library_is_present_on_a_machine_that_runs_qt_on_x11():
    """The list is the X11 plugin's own: where the plugin loads, nothing is missing."""
    import ctypes.util

    if ctypes.util.find_library("xcb-cursor") is None:
        pytest.skip("this machine lacks libxcb-cursor0: Qt cannot run on X11 here either")
    assert missing_libraries(X11_PLUGIN_LIBRARIES) == []
