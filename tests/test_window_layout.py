"""The whole window on the screens people have: a 1280x720 and a 1366x768 laptop, a
1920x1080 monitor and a 2560x1440 one at 200% (1280x720 of room), light and dark, first
start, relaunch and Reset layout (tests/layout_check.py does the looking).

Each screen runs in a child process of its own: Qt takes its screens once, when the
application starts. The screenshots of every case are kept, in NNVIZ_LAYOUT_SHOTS when
it is set, else in the test run's temporary folder (printed in the report).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCREENS = ["1280x720", "1366x768", "1920x1080", "1280x720@2"]
CHECK = Path(__file__).with_name("layout_check.py")
STATES = ["first-start-light", "first-start-dark", "relaunch-dark", "reset-dark"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every screen's report, the child processes run two at a time (two cores)."""
    shots = Path(os.environ.get("NNVIZ_LAYOUT_SHOTS") or tmp_path_factory.mktemp("layout-shots"))
    print(f"layout screenshots: {shots}")
    out: dict[str, dict] = {}
    for pair in (SCREENS[:2], SCREENS[2:]):
        running = {}
        for screen in pair:
            env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path_factory.mktemp("config")))
            running[screen] = subprocess.Popen(
                [sys.executable, str(CHECK), screen, "--out", str(shots)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        for screen, child in running.items():
            stdout, stderr = child.communicate(timeout=300)
            assert child.returncode == 0, f"{screen}: layout check failed:\n{stderr[-3000:]}"
            out[screen] = json.loads(stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("screen", SCREENS)
def test_every_state_of_the_window_looks_right(reports, screen):
    report = reports[screen]
    assert list(report["states"]) == STATES
    for state, problems in report["states"].items():
        assert problems == [], f"{screen}, {state}"


@pytest.mark.parametrize("screen", SCREENS)
def test_relaunch_restores_the_saved_layout_and_reset_gives_the_first(reports, screen):
    assert reports[screen]["relaunch_moved"] == {}
    assert reports[screen]["reset_moved"] == {}


def test_screenshots_of_every_case_are_written(reports):
    from PySide6.QtGui import QImage

    from nnviz.qt.window_layout import DEFAULT_SIZE

    for screen in SCREENS:
        shots = reports[screen]["screenshots"]
        assert len(shots) == len(STATES)
        for path in shots:
            image = QImage(path)
            assert not image.isNull(), path
            # The window takes the screen's room, up to the default size on a large one.
            width = min(int(screen.split("x")[0]), DEFAULT_SIZE[0])
            assert image.width() >= 0.9 * width
