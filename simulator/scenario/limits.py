"""How large (or small) a scenario's values may be, and why (README, "Scenario keys", "Limits").

Every limit lies far beyond the shipped scenarios and the paper's workloads (100-300 epochs
of CIFAR-10 or Tiny ImageNet at batch 32, a dozen bit rates). It exists so that a value no
one can mean (10^12 epochs, 1e-300 Mbit/s) ends in one line naming the key and the limit,
not in a run that never returns, runs out of memory, or writes inf into results.csv.

What a run costs: a deterministic run (no jitter, no loss) fast-forwards once its pipeline
is periodic, so its length costs next to nothing, but it keeps one end time per epoch
(RunResult.epoch_end_s, epochs.csv). A run with jitter or loss is simulated event by event:
here about 14,000-21,000 batches/s (split learning is the slowest) and 0.6 kB of logs per batch.
"""
import math
from dataclasses import dataclass

from ..core.errors import UserError


def number_text(value: float) -> str:
    """1,000,000 for integers; 1e-06 for other numbers."""
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Limit:
    """The largest value of a key (the smallest, with `lower`), its unit and the reason for it."""

    value: float
    unit: str
    why: str
    lower: bool = False

    def check(self, file: str, key: str, value: float) -> None:
        """`file` "" for a command-line flag: the message then starts with the flag."""
        if value < self.value if self.lower else value > self.value:
            where = f"{file}: " if file else ""
            raise UserError(f"{where}{key} {number_text(value)} is {'below' if self.lower else 'over'} the limit of "
                            f"{number_text(self.value)}{self.unit} ({self.why})")


# ---- workload ------------------------------------------------------------------------------
MAX_EPOCHS = Limit(10_000, " epochs", "each run keeps one end time per epoch for epochs.csv and the figures; "
                   "no training schedule is this long")
MAX_TRAIN_SAMPLES = Limit(10**10, " samples", "more than LAION-5B, the largest public image dataset")
# Pixels per side of an input image: 4,096 x 4,096 x 3 is 50 MB per raw sample (a 16-megapixel frame).
MAX_INPUT_SIZE = Limit(4096, " pixels", "a 16-megapixel camera frame is about 4,096 pixels wide")
MAX_BATCH_SIZE = Limit(65_536, " samples", "the largest batches of large-batch training are 32k-64k samples")
# epochs x runs (models x uplink rates x methods): the rows of epochs.csv, about 40 bytes each.
MAX_EPOCH_ROWS = Limit(1_000_000, " rows", "epochs.csv holds one row per epoch of every run; 10^6 rows are 40 MB")
# epochs x batches per epoch, when network.jitter_ms or network.loss_rate is not 0.
MAX_EVENT_BATCHES = Limit(1_000_000, " batches", "with jitter or loss every batch is simulated event by event, "
                          "about a minute and 0.6 GB per run here")

# ---- fleets ----------------------------------------------------------------------------------
MAX_FLEET_EDGES = Limit(100_000, " edges", "each edge is simulated with its own machine and links; 100,000 is "
                        "about 0.5 GB before its first batch")
MAX_CLOUD_GPUS = Limit(100_000, " GPUs", "each cloud GPU is a SimPy process; no data centre gives one training "
                       "job more")
# A fleet is simulated event by event (no fast forward): about 10,000-20,000 batches/s here.
MAX_FLEET_BATCHES = Limit(50_000_000, " batches", "a fleet is simulated batch by batch, about an hour per "
                          "50 million batches here; shorten the shares or the epochs")

# ---- network -------------------------------------------------------------------------------
MAX_REPLICATIONS = Limit(1_000, " replications", "a 95% interval narrows as 1/sqrt(N); 1,000 give it to 3%")
MAX_TRACE_SCALE = Limit(1e6, "x", "a million times a measured cellular link is beyond any fibre")
MAX_TIME_S = Limit(1e9, " s", "32 years of simulated time")
MIN_MEAN_UP_S = Limit(1.0, " s", "an outage model's up periods last at least a second on average; a run may "
                      "draw at most 1,000,000 outages", lower=True)
MAX_UPLINK_RATES = Limit(1_000, " rates", "each rate is one run per model and method; 1,000 draw a smooth curve")
MIN_RATE_MBPS = Limit(1e-6, " Mbit/s", "1 bit/s; slower than any modem", lower=True)
MAX_RATE_MBPS = Limit(1e9, " Mbit/s", "1 Pbit/s, the record for one optical fibre")
# latency_ms, jitter_ms, retransmit_timeout_ms
MAX_DELAY_MS = Limit(1e7, " ms", "2.8 hours; light takes 22 minutes from Mars")
MAX_MTU_BYTES = Limit(2**32, " bytes", "an IPv6 jumbogram, the largest packet any network carries")
# The fast forward first simulates buffer + stages + 2 batches event by event; the edge holds the buffer in memory.
MAX_UPLINK_BUFFER_BATCHES = Limit(10_000, " batches", "the edge would hold 10,000 batches of activations; "
                                  "the fast forward simulates that many event by event first")

# ---- sweeps ---------------------------------------------------------------------------------
MAX_SWEEP_VALUES = Limit(1_000, " values", "each value multiplies the settings; 1,000 draw a smooth curve")
# settings x models x uplink rates x methods: about 3 ms each here, plus the split search per setting
MAX_SWEEP_RUNS = Limit(1_000_000, " runs", "about an hour of simulation here; sweep fewer keys or values")

# ---- accuracy (real training) ----------------------------------------------------------------
MAX_ACCURACY_EPOCHS = Limit(1_000, " epochs", "real training; published schedules for these datasets are "
                            "at most a few hundred epochs")
MAX_ACCURACY_WIDTH = Limit(4.0, "", "4x the channels is 16x the parameters of the full model")

# ---- command-line flags (profile, emulate) -------------------------------------------------------
MAX_THREADS = Limit(4_096, " threads", "more intra-op threads than any CPU has cores")
MAX_SEED = Limit(2**63 - 1, "", "seeds are 64-bit integers in torch and numpy")
MAX_REPEATS = Limit(10_000, " runs", "10,000 timed runs of every part; medians settle after a few dozen")
MAX_EMULATED_BATCHES = Limit(10_000, " batches", "the edge worker keeps every batch in memory as uint8 before the "
                             "clock starts; 10,000 batches of 32 CIFAR images are 1 GB")
MAX_TIMEOUT_S = Limit(86_400, " s", "a day; a peer that has not answered in a day is gone")


def check_flag_number(flag: str, value: float, limit: Limit, minimum: float = 0, allow_minimum: bool = False) -> None:
    """A command-line number: finite, above `minimum` (or equal to it with `allow_minimum`), within `limit`."""
    if not math.isfinite(value) or value < minimum or (value == minimum and not allow_minimum):
        raise UserError(f"{flag} must be a finite number {'>=' if allow_minimum else '>'} {minimum:g}, got {value:g}")
    limit.check("", flag, value)
