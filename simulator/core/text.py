"""How numbers read in terminals, reports and messages: one formatter per kind of number."""
import math


def duration_text(seconds: float) -> str:
    """Readable simulated time: s below a minute, then min, h, and d beyond a day."""
    if not math.isfinite(seconds):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def reduction_text(reduction: float) -> str:
    """+29% = 29% less time than the baseline; a slowdown beyond 2x reads as '3.1x longer'."""
    if not math.isfinite(reduction):
        return "-"
    ratio = 1.0 - reduction
    return f"{ratio:.1f}x longer" if ratio >= 2 else f"{100 * reduction:+.0f}%"


def percent_text(fraction: float) -> str:
    return "-" if not math.isfinite(fraction) else f"{100 * fraction:.1f}%"


def rate_text(rate_mbps: float) -> str:
    return f"{rate_mbps:g} Mbit/s"


def bytes_text(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            value = n_bytes / size
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}" if value >= 10 else \
                f"{value:.2f} {unit}"
    return f"{n_bytes:.0f} B"


def one_line(text: str, limit: int = 200) -> str:
    """`text` (an error from a library, several lines long) as one line of at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
