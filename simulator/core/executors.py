"""Where the independent runs of a sweep execute, and results back in input order.

    serial   in this process, one after another (`--workers 1`; library calls by default)
    local    a pool of `workers` processes on this machine (`--workers N`, the CLI's default:
             every core)
    ray      tasks on a Ray cluster (`--executor ray [--ray-address HOST:PORT]`); without an
             address, a local Ray instance with `workers` CPUs, shut down at the end

`Executor.map(fn, jobs)` yields `fn(job)` for every job in the order of `jobs`, whatever order
the workers finish in: an output assembled from it is the same byte for byte on any executor.
Jobs travel in chunks of up to MAX_CHUNK_JOBS (thousands of millisecond runs would otherwise
spend their time in inter-process messages), at most CHUNKS_IN_FLIGHT_PER_WORKER per worker at
a time, so a million-run sweep never holds every job or result at once. A chunk of jobs that
`cheap` calls cheap runs here instead: starting a worker costs more than they take.

Ctrl-C (KeyboardInterrupt), an error in a job, or a caller that stops reading: the pending
jobs are cancelled and the workers stopped (Ray: the tasks cancelled; a local instance shut
down), then the exception goes on up. Workers ignore SIGINT; this process stops them.
"""
import os
import signal
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context

from .errors import UserError
from .progress import progress_bar

EXECUTORS = ("local", "ray")
MAX_CHUNK_JOBS = 64  # jobs per message to a worker at most
CHUNKS_PER_WORKER = 32  # chunks per worker aimed at: small last ones balance the load (~1 ms of messages each)
CHUNKS_IN_FLIGHT_PER_WORKER = 4  # submitted but not yet read back, per worker
MAX_WORKERS = 4096
# A local Ray instance's workers run at this process's priority, as the pool's do (Ray's default
# lowers them to nice 15, and they then lose the CPU to anything else running here).
LOCAL_RAY_CONFIG = {"worker_niceness": 0}
WAIT_SLICE_S = 0.2  # longest wait for a result before this thread looks at signals (Ctrl-C) again


def all_cores() -> int:
    """The cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Resources:
    """What one job asks a Ray node for (a local pool runs every job alike)."""

    cpus: float = 1.0
    gpus: float = 0.0


CPU_JOB = Resources()


def run_chunk(fn: Callable, jobs: list) -> list:
    """A worker's side: every job of a chunk, in order."""
    return [fn(job) for job in jobs]


def ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the process that started them (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def chunk_jobs(total: int, workers: int) -> int:
    """Jobs per chunk: about CHUNKS_PER_WORKER chunks per worker, within 1 .. MAX_CHUNK_JOBS."""
    return max(1, min(MAX_CHUNK_JOBS, total // (workers * CHUNKS_PER_WORKER)))


class Executor:
    """Runs jobs serially, in a local process pool or on Ray; see the module docstring.

    `kind`: local or ray; `workers`: processes of the pool, or CPUs of a local Ray instance
    (1 and local: serial, in this process); `ray_address`: HOST:PORT of a running cluster.
    Use it as a context manager: the pool or Ray instance lives until the block ends.
    """

    def __init__(self, kind: str = "local", workers: int = 1, ray_address: str | None = None):
        if kind not in EXECUTORS:
            raise ValueError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
        self.kind, self.workers, self.ray_address = kind, workers, ray_address
        self.pool: futures.ProcessPoolExecutor | None = None
        self.ray = None  # the ray module, once connected
        self.remote = None  # run_chunk as a Ray remote function
        self.cluster: dict = {}  # the Ray cluster's resources (CPU, GPU, ...)
        self.started_ray = False

    @property
    def in_process(self) -> bool:
        """Whether every job runs in this process (serial)."""
        return self.kind == "local" and self.workers == 1

    def __enter__(self):  # -> Executor (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(cancel=exc_type is not None)

    def map(self, fn: Callable, jobs: Iterable, total: int, desc: str | None = None, unit: str = "run",
            resources: Resources = CPU_JOB, chunk: int | None = None,
            cheap: Callable[[object], bool] | None = None, prepare: Callable[[], None] | None = None) -> Iterator:
        """`fn(job)` for each of the `total` jobs, in order; one progress bar `desc` (None: none).

        `fn` and the jobs must pickle (a module-level function, frozen dataclasses) unless the
        executor runs in process. `chunk`: jobs per chunk (default `chunk_jobs`). `prepare`
        runs here once before the first job leaves this process (e.g. compiling what the
        workers then load from disk).
        """
        bar = progress_bar(total=total, desc=desc or "", unit=unit, enabled=desc is not None)
        jobs = iter(jobs)
        if self.in_process:
            for job in jobs:
                result = fn(job)
                bar.update()
                yield result
            bar.close()
            return
        size = chunk or chunk_jobs(total, self.parallelism())
        window = CHUNKS_IN_FLIGHT_PER_WORKER * self.parallelism()
        inflight: deque = deque()  # submitted, not yet read back, in submission order
        sizes: dict = {}  # jobs per handle in flight
        counted: set = set()  # handles whose jobs the bar has counted (finished)
        try:
            while True:
                while len(inflight) < window and (part := list(islice(jobs, size))):
                    if cheap is not None and all(map(cheap, part)):
                        handle = Done(run_chunk(fn, part))
                    else:
                        if prepare is not None:  # once
                            prepare()
                            prepare = None
                        handle = self.submit(fn, part, resources)
                    inflight.append(handle)
                    sizes[handle] = len(part)
                if not inflight:
                    break
                while inflight[0] not in counted:
                    for handle in self.wait_any([h for h in inflight if h not in counted]):
                        counted.add(handle)
                        bar.update(sizes[handle])
                head = inflight.popleft()
                counted.discard(head)
                del sizes[head]
                yield from self.result(head)
        except BaseException:  # Ctrl-C, a failed job, or the caller closed the generator
            self.cancel(list(inflight))
            raise
        bar.close()

    # ---- backends ---------------------------------------------------------------------------

    def parallelism(self) -> int:
        """Jobs that can run at once: the pool's workers, or the Ray cluster's CPUs."""
        if self.kind == "ray" and self.ray_address is not None:
            self.connect()
            return max(1, int(self.cluster.get("CPU", 1)))
        return self.workers

    def gpus(self) -> float:
        """GPUs a job could ask for: the Ray cluster's (connecting to it); 0 for a local executor,
        whose workers share this machine's devices without asking."""
        if self.kind != "ray":
            return 0.0
        self.connect()
        return float(self.cluster.get("GPU", 0))

    def submit(self, fn: Callable, part: list, resources: Resources):
        if self.kind == "ray":
            self.connect()
            if resources.gpus > self.gpus():
                raise UserError(f"accuracy.device cuda: a training run asks for a GPU, and the Ray cluster has "
                                f"{self.gpus():g}; use accuracy.device cpu or auto, or add a GPU node")
            return self.remote.options(num_cpus=resources.cpus, num_gpus=resources.gpus).remote(fn, part)
        if self.pool is None:
            self.pool = futures.ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                    initializer=ignore_sigint)
        return self.pool.submit(run_chunk, fn, part)

    def wait_any(self, handles: list) -> list:
        """The handles among `handles` that are done, after waiting until at least one is.

        Waits in slices of WAIT_SLICE_S: a signal may wake another thread than this one, and
        Python runs the SIGINT handler (KeyboardInterrupt) only when this thread runs again.
        """
        done = [h for h in handles if isinstance(h, Done)]
        while not done:
            if self.kind == "ray":
                ready, _ = self.ray.wait(handles, num_returns=1, timeout=WAIT_SLICE_S)
                done = [h for h in handles if h in ready]
            else:
                done = list(futures.wait(handles, timeout=WAIT_SLICE_S, return_when=futures.FIRST_COMPLETED)[0])
        return done

    def result(self, handle) -> list:
        if isinstance(handle, Done):
            return handle.value
        if self.kind != "ray":
            return handle.result()
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as exc:  # a UserError in a task stays one line
            if isinstance(exc.cause, UserError):
                raise exc.cause from None
            raise

    def connect(self):
        """The ray module, connected: to `ray_address`, else to a local instance started here."""
        if self.ray is not None:
            return self.ray
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray, an optional dependency: pip install -e '.[ray]'") from None
        if not ray.is_initialized():
            import logging

            if self.ray_address is not None:
                check_reachable(self.ray_address)
            try:
                if self.ray_address is not None:
                    ray.init(address=self.ray_address, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    # address "local": a new instance even where `ray start` runs a cluster on this machine
                    ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False, _system_config=LOCAL_RAY_CONFIG)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if self.ray_address is None:
                    raise UserError(f"--executor ray: cannot start a local Ray instance "
                                    f"({str(exc).splitlines()[0]})") from None
                raise UserError(f"--executor ray: cannot connect to the Ray cluster at {self.ray_address} "
                                f"({str(exc).splitlines()[0]}); is it up (ray start --head)? Under token "
                                "authentication, set RAY_AUTH_MODE=token with the cluster's token in "
                                "~/.ray/auth_token") from None
            self.started_ray = True
        self.ray, self.remote, self.cluster = ray, ray.remote(run_chunk), ray.cluster_resources()
        return ray

    def cancel(self, handles: list) -> None:
        """Stop the work behind `handles`: cancel Ray tasks; stop the local pool's workers."""
        if self.kind == "ray" and self.ray is not None:
            for handle in handles:
                if not isinstance(handle, Done):
                    self.ray.cancel(handle, force=True)
        else:
            self.stop_pool()

    def stop_pool(self) -> None:
        """Cancel the queued jobs and end the workers now, mid-job (nothing of theirs is kept)."""
        if self.pool is None:
            return
        pool, self.pool = self.pool, None
        # ProcessPoolExecutor.terminate_workers is Python 3.14's; before it, the processes are
        # private (taken before shutdown, which forgets them)
        terminate = getattr(pool, "terminate_workers", None)
        if terminate is not None:
            terminate()
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()

    def close(self, cancel: bool = False) -> None:
        """Release the workers: wait for an idle pool (or stop it with `cancel`); disconnect from Ray."""
        if self.pool is not None:
            if cancel:
                self.stop_pool()
            else:
                self.pool.shutdown(wait=True)
                self.pool = None
        if self.started_ray and self.ray is not None:
            self.ray.shutdown()
        self.ray, self.started_ray = None, False


class Done:
    """A chunk that ran in this process: already finished."""

    def __init__(self, value: list):
        self.value = value


SERIAL = Executor()  # in this process: what library calls use unless given another


def check_workers(workers: int) -> int:
    """--workers within 1 .. MAX_WORKERS, as a one-line error otherwise."""
    if not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be between 1 and {MAX_WORKERS:,}, got {workers}")
    return workers


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Something accepts TCP connections at HOST:PORT; else a one-line error at once (Ray itself
    retries for minutes before it gives up on an address where nothing listens)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); start the "
                        f"cluster's head node with ray start --head --port={port}") from None


def check_ray_address(address: str) -> str:
    """HOST:PORT (port 1 .. 65535), as a one-line error otherwise."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(f"--ray-address must be HOST:PORT (a Ray head node, e.g. 10.0.0.1:6379), got {address!r}")
    return address
