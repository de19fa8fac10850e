"""Jobs for the executor tests, in a module of their own: a pool worker imports it in a fraction
of a second (the test modules import torch through conftest)."""
import time


def sleepy(job: tuple[float, int]) -> int:
    """Sleep job[0] seconds, then return job[1]: jobs that finish in another order than sent."""
    delay_s, value = job
    time.sleep(delay_s)
    return value


def fail_on(job: int) -> int:
    if job == 13:
        raise ValueError("job 13 failed")
    return job
