"""Measured link traces: what a link can carry, and when.

Two formats, told apart by the file's name (`.csv` is a rate table, anything else Mahimahi):

Mahimahi (`mm-link`; the files under `traces/`): one integer per line, a time in
milliseconds from the start of the trace. Each line is one opportunity to send one
1500-byte packet; several packets in one millisecond repeat the timestamp. The trace
repeats when it ends, with a period equal to its last timestamp: opportunity k (0-based,
counting on through the repeats) is at (k // N) * period_ms + times_ms[k % N], N lines.

Rate CSV, for users' own measurements: a header `time_s,mbps`, then rows. Row i's rate
holds from its time until the next row's; the last row's rate holds as long as the interval
before it (a trace sampled every second ends one second after its last row). The first row
is at time 0; times strictly increase; rates are >= 0 and not all 0. The trace repeats.

Mean rate (Mbit/s): Mahimahi N * 1500 * 8 bits / period; CSV the time-weighted mean.
"""
import bisect
import csv
import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..core.typed import shown

PACKET_BYTES = 1500  # one Mahimahi delivery opportunity
MAX_TRACE_BYTES = 256 * 2**20  # a trace file larger than this is refused (the shipped ones are < 1.3 MB)


@dataclass(frozen=True, eq=False)
class PacketTrace:
    """A Mahimahi trace: delivery opportunities at `times_ms` (sorted), repeating every `period_ms`."""

    path: str
    times_ms: tuple[int, ...]
    period_ms: int

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def period_s(self) -> float:
        return self.period_ms / 1e3

    @property
    def mean_mbps(self) -> float:
        return len(self.times_ms) * PACKET_BYTES * 8 / (self.period_ms / 1e3) / 1e6

    def first_at_or_after(self, time_ms: float) -> int:
        """Index (counting through the repeats) of the first opportunity at or after `time_ms` >= 0.
        A time within 1e-6 ms above an opportunity's counts as that opportunity's (float rounding)."""
        time_ms -= 1e-6
        cycle = max(0, math.floor(time_ms / self.period_ms))
        within = bisect.bisect_left(self.times_ms, time_ms - cycle * self.period_ms)
        return cycle * len(self.times_ms) + within

    def time_ms(self, index: int) -> int:
        """When opportunity `index` comes, in trace milliseconds."""
        cycle, within = divmod(index, len(self.times_ms))
        return cycle * self.period_ms + self.times_ms[within]

    def capacity_mbps(self, bin_s: float, until_s: float) -> tuple[list[float], list[float]]:
        """(bin start times, Mbit/s in each bin) over [0, until_s): the trace drawn as a rate."""
        n_bins = max(1, math.ceil(until_s / bin_s))
        counts = [0] * n_bins
        index = 0
        while (t := self.time_ms(index)) < until_s * 1e3:
            counts[int(t / 1e3 / bin_s)] += 1
            index += 1
        return [i * bin_s for i in range(n_bins)], [c * PACKET_BYTES * 8 / bin_s / 1e6 for c in counts]


@dataclass(frozen=True, eq=False)
class RateTrace:
    """A piecewise-constant rate: `mbps[i]` from `starts_s[i]` to the next start; repeats every `period_s`."""

    path: str
    starts_s: tuple[float, ...]
    mbps: tuple[float, ...]
    period_s: float

    def __post_init__(self) -> None:
        cumulative = [0.0]  # bits delivered from 0 to each segment's start (and the period's end)
        ends = (*self.starts_s[1:], self.period_s)
        for start, end, rate in zip(self.starts_s, ends, self.mbps):
            cumulative.append(cumulative[-1] + rate * 1e6 * (end - start))
        object.__setattr__(self, "cumulative_bits", tuple(cumulative))

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def mean_mbps(self) -> float:
        return self.cumulative_bits[-1] / self.period_s / 1e6

    def bits_until(self, time_s: float) -> float:
        """Bits the trace carries from 0 to `time_s` >= 0 (at scale 1)."""
        cycle = math.floor(time_s / self.period_s)
        within = time_s - cycle * self.period_s
        i = max(0, bisect.bisect_right(self.starts_s, within) - 1)
        return (cycle * self.cumulative_bits[-1] + self.cumulative_bits[i]
                + self.mbps[i] * 1e6 * (within - self.starts_s[i]))

    def time_of_bits(self, bits: float) -> float:
        """The earliest time by which the trace has carried `bits` > 0 (inverse of `bits_until`)."""
        per_period = self.cumulative_bits[-1]
        cycle = math.ceil(bits / per_period) - 1
        rest = bits - cycle * per_period  # in (0, per_period]
        i = bisect.bisect_left(self.cumulative_bits, rest) - 1  # cumulative[i] < rest <= cumulative[i + 1]
        i = min(max(i, 0), len(self.mbps) - 1)
        return cycle * self.period_s + self.starts_s[i] + (rest - self.cumulative_bits[i]) / (self.mbps[i] * 1e6)

    def capacity_mbps(self, bin_s: float, until_s: float) -> tuple[list[float], list[float]]:
        n_bins = max(1, math.ceil(until_s / bin_s))
        starts = [i * bin_s for i in range(n_bins)]
        return starts, [(self.bits_until(s + bin_s) - self.bits_until(s)) / bin_s / 1e6 for s in starts]


Trace = PacketTrace | RateTrace


@functools.lru_cache(maxsize=32)
def load_trace(path: str) -> Trace:
    """Read and check a trace file (cached per path); UserError naming the file and line otherwise."""
    file, name = Path(path), shown(path)
    try:
        if not file.is_file():
            raise UserError(f"{name}: trace file not found (Mahimahi lines of milliseconds, or a time_s,mbps CSV)")
        if file.stat().st_size > MAX_TRACE_BYTES:
            raise UserError(f"{name}: trace file is larger than {MAX_TRACE_BYTES // 2**20} MiB")
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{name}: cannot read the trace: {getattr(e, 'strerror', None) or e}") from None
    return read_rate_csv(path, text) if file.suffix.lower() == ".csv" else read_mahimahi(path, text)


def read_mahimahi(path: str, text: str) -> PacketTrace:
    times = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = int(line)
        except ValueError:
            raise UserError(f"{path}, line {number}: {line.strip()[:40]!r} is not a whole number of milliseconds "
                            "(Mahimahi format: one delivery opportunity per line)") from None
        if value < 0 or (times and value < times[-1]):
            raise UserError(f"{path}, line {number}: timestamps must be >= 0 and non-decreasing, got {value} "
                            f"after {times[-1] if times else 'the start'}")
        times.append(value)
    if not times or times[-1] <= 0:
        raise UserError(f"{path}: a Mahimahi trace needs at least one opportunity and a last timestamp > 0 ms "
                        "(its period)")
    return PacketTrace(path, tuple(times), times[-1])


def read_rate_csv(path: str, text: str) -> RateTrace:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != ["time_s", "mbps"]:
        raise UserError(f"{path}: a rate trace starts with the header 'time_s,mbps'")
    starts, rates = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            time_s, mbps = (float(c) for c in row)
        except ValueError:
            raise UserError(f"{path}, line {number}: expected two numbers time_s,mbps, got {','.join(row)[:60]!r}") \
                from None
        if not (math.isfinite(time_s) and math.isfinite(mbps)) or mbps < 0:
            raise UserError(f"{path}, line {number}: time_s must be finite and mbps finite and >= 0")
        if (not starts and time_s != 0) or (starts and time_s <= starts[-1]):
            raise UserError(f"{path}, line {number}: the first row is at time_s 0 and times strictly increase, "
                            f"got {time_s:g}")
        starts.append(time_s)
        rates.append(mbps)
    if len(starts) < 2 or not any(rates):
        raise UserError(f"{path}: a rate trace needs at least two rows and a rate above 0")
    return RateTrace(path, tuple(starts), tuple(rates), starts[-1] + (starts[-1] - starts[-2]))
