"""Outages: windows [start_s, end_s) of simulated time in which a link carries nothing.

Two sources, applied together on top of a constant rate or a trace:

- fixed windows, `network.outages: [{start_s, duration_s}, ...]`;
- a two-state on/off (Gilbert-Elliott) model, `network.outage_model: {mean_up_s, mean_down_s}`:
  starting up at time 0, the link alternates between up periods ~ Exponential(mean_up_s) and
  down periods ~ Exponential(mean_down_s), drawn in order from the run's outage seed, as far
  as the run needs them.

One cell carries both directions, so the uplink and the downlink of a run share one schedule
(built from the same seed, they draw the same windows). Overlapping windows merge.
"""
import bisect

import numpy as np

from ..core.errors import UserError

MAX_DRAWN_OUTAGES = 1_000_000  # about 100 MB of windows; 11 days of simulated time at 1 s periods


class OutageSchedule:
    """The outage windows of one run; `next_window(t)` finds the one that matters at t.

    Fixed windows are merged once; the model's windows are drawn in time order as far as the run
    needs them (they never overlap each other), and the two lists are merged where they are read.
    """

    def __init__(self, fixed: tuple[tuple[float, float], ...] = (), mean_up_s: float | None = None,
                 mean_down_s: float | None = None, seed: int = 0):
        self.fixed = merge(sorted((start, start + duration) for start, duration in fixed if duration > 0))
        self.fixed_starts = [w[0] for w in self.fixed]
        self.model = mean_up_s is not None and mean_down_s is not None and mean_down_s > 0
        self.rng = np.random.default_rng(seed)
        self.mean_up_s, self.mean_down_s = mean_up_s, mean_down_s
        self.drawn: list[tuple[float, float]] = []  # the model's windows so far, in order
        self.drawn_starts: list[float] = []
        self.drawn_until_s = 0.0  # the model's state is known up to here (the end of the last down period)

    def _draw_until(self, time_s: float) -> None:
        """Draw the model's periods until its state is known past `time_s`."""
        while self.model and self.drawn_until_s <= time_s:
            if len(self.drawn) >= MAX_DRAWN_OUTAGES:
                raise UserError(f"network.outage_model draws more than {MAX_DRAWN_OUTAGES:,} outages over the run "
                                f"(mean_up_s {self.mean_up_s:g} + mean_down_s {self.mean_down_s:g} against "
                                f"{time_s:,.0f} s of simulated time); give longer periods or a shorter run")
            down_start = self.drawn_until_s + self.rng.exponential(self.mean_up_s)
            down_end = down_start + self.rng.exponential(self.mean_down_s)
            self.drawn.append((down_start, down_end))
            self.drawn_starts.append(down_start)
            self.drawn_until_s = down_end

    def _first_ending_after(self, time_s: float) -> tuple[float, float] | None:
        """Of the fixed and the drawn windows, the earliest-starting one that ends after `time_s`."""
        self._draw_until(time_s)
        found = []
        for windows, starts in ((self.fixed, self.fixed_starts), (self.drawn, self.drawn_starts)):
            i = bisect.bisect_right(starts, time_s) - 1
            if i >= 0 and windows[i][1] > time_s:
                found.append(windows[i])
            elif i + 1 < len(windows):
                found.append(windows[i + 1])
        if self.model and not any(w[0] <= self.drawn_until_s for w in found):
            self._draw_until(self.drawn_until_s)  # the model's next outage may come first
            return self._first_ending_after(time_s)
        return min(found) if found else None

    def next_window(self, time_s: float) -> tuple[float, float] | None:
        """The first window (fixed and drawn merged) that ends after `time_s`; it may already have started."""
        window = self._first_ending_after(time_s)
        if window is None:
            return None
        start_s, end_s = window
        while (following := self._first_ending_after(end_s)) is not None and following[0] <= end_s:
            end_s = following[1]  # overlapping or touching windows are one outage
        return start_s, end_s

    def known_windows(self, horizon_s: float) -> tuple[list[tuple[float, float]], float]:
        """(every window known once the model is drawn past `horizon_s`, unmerged; the time up to
        which that list is complete: +inf without a model, else the end of the last drawn window)."""
        if not self.model:
            return list(self.fixed), float("inf")
        self._draw_until(horizon_s)
        return list(self.fixed) + self.drawn, self.drawn_until_s

    def windows_until(self, until_s: float) -> list[tuple[float, float]]:
        """Every (merged) window that starts before `until_s` (for reports), whole: the last may
        end after `until_s`, and the model is drawn until nothing it draws later can extend it."""
        self._draw_until(until_s)
        while True:
            windows = [w for w in merge(sorted(self.fixed + tuple(self.drawn))) if w[0] < until_s]
            if not self.model or not windows or windows[-1][1] <= self.drawn_until_s:
                return windows
            self._draw_until(windows[-1][1])  # a fixed window outlasts the draws: a later draw may join it


def merge(windows: list[tuple[float, float]], touching: bool = True) -> tuple[tuple[float, float], ...]:
    """Sorted windows with the overlapping ones joined; `touching` joins those that only meet too."""
    merged: list[tuple[float, float]] = []
    for start, end in windows:
        if merged and (start <= merged[-1][1] if touching else start < merged[-1][1]):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
