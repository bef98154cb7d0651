"""At most so many frames a second, without pushing a frame back because the last was late.

What the user does by hand (a stroke on the canvas) is drawn at once rather than at the
next tick, but at most once per 60 Hz frame: mouse moves that come faster are coalesced
into one forward pass and one repaint. A fixed minimum spacing between frames did that,
and locked a 50 Hz stream of moves out of step: a frame drawn late (it waited for its
slot) made the next move fall inside the spacing, so that move waited too, and the first
move of nearly every stroke waited up to a frame. A token bucket allows the same 60
frames a second on average and lets a frame follow a late one at once.
"""

from __future__ import annotations


class FrameRate:
    """A token bucket of frames: ``wait`` says how long until the next may be drawn."""

    def __init__(self, per_second: float, burst: float = 2.0) -> None:
        self.interval = 1.0 / per_second
        self.burst = burst  # frames that may follow one another at once
        self._frames = burst
        self._last = 0.0  # when the bucket was last filled up to now

    def _fill(self, now: float) -> None:
        self._frames = min(self.burst, self._frames + (now - self._last) / self.interval)
        self._last = now

    def wait(self, now: float) -> float:
        """Seconds until a frame may be drawn (0: now)."""
        self._fill(now)
        return max(0.0, (1.0 - self._frames) * self.interval)

    def take(self, now: float) -> None:
        """A frame is being drawn now."""
        self._fill(now)
        self._frames = max(0.0, self._frames - 1.0)
