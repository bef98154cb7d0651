"""How much of the GUI thread the views may spend following training that runs flat out.

PySide holds the GIL through every call into Qt, painting included: while a 2-second
``QPainter.drawPath`` ran, a pure-Python thread beside it got 0.2% of its speed. So each
millisecond the window spends redrawing and painting is a millisecond in which the
training thread cannot run its Python, and with every panel open the GUI thread took a
third of a core and cost mlp-3b1b a quarter of its speed.

While training runs as fast as it can, the frame timer therefore redraws the views that
follow training only while the GUI thread's CPU time stays within a share of a core: a
token bucket filled at ``share`` seconds of CPU per second, drained by everything the
GUI thread does (redraws, paints, the user's own clicks and strokes), holding at most
``burst_s`` and owing at most as much: a one-off cost (a model load rebuilding every
panel) must not hold the views back for seconds after it. With a few panels open nothing
changes; with twenty, each redraws less often. What the user does by hand is never held
back (it only drains the bucket), and a paused or paced run, which leaves the GIL free,
gets no limit at all.
"""

from __future__ import annotations


class RedrawBudget:
    """A token bucket of GUI-thread CPU seconds; ``allow`` says whether to redraw now."""

    def __init__(self, share: float, burst_s: float) -> None:
        self.share = share
        self.burst_s = burst_s
        self._credit = burst_s
        self._last: tuple[float, float] | None = None  # (wall clock, thread CPU) last seen

    @property
    def credit(self) -> float:
        """CPU seconds the views may still spend (negative: overspent, waiting)."""
        return self._credit

    def allow(self, now: float, cpu: float, *, limited: bool) -> bool:
        """Account for the CPU time used since the last call; True if a redraw may run.

        ``now`` is the wall clock and ``cpu`` this thread's CPU time (both in seconds,
        e.g. ``time.perf_counter()`` and ``time.thread_time()``); ``limited`` is whether
        training runs flat out. Unlimited, the bucket refills to full.
        """
        if self._last is not None and limited:
            wall, used = now - self._last[0], cpu - self._last[1]
            credit = self._credit + self.share * wall - used
            self._credit = min(self.burst_s, max(-self.burst_s, credit))
        else:
            self._credit = self.burst_s
        self._last = (now, cpu)
        return self._credit >= 0.0
