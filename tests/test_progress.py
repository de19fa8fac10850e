"""Progress output: tqdm frames on a terminal, a few plain lines anywhere else (real processes)."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from conftest import ROOT, run_process, write_scenario

# Runs the helper the way the commands do: a bar advanced by update() (with a postfix), a bar over
# an iterable, one left early by an error (no last line), one disabled (--no-progress).
SCRIPT = """
import sys, time
from simulator.core import progress
progress.LINE_INTERVAL_S, steps, sleep_s = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
start_s = time.monotonic()
bar = progress.progress_bar(total=steps, desc="work", unit="step")
for _ in range(steps):
    time.sleep(sleep_s)
    bar.update()
bar.set_postfix(acc="0.5")
bar.close()
for _ in progress.progress_bar(range(1000), desc="items", unit="item", leave=False):
    pass
try:
    for i in progress.progress_bar(range(10), desc="broken"):
        if i == 3:
            raise RuntimeError
except RuntimeError:
    pass
for _ in progress.progress_bar(range(10), desc="hidden", enabled=False):
    pass
print(time.monotonic() - start_s)
"""


def run_script(*args, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=stderr, text=True, timeout=120, check=False)


def test_a_pipe_gets_one_plain_line_per_finished_bar_and_no_carriage_return():
    proc = run_script(10.0, 100_000, 0)  # far shorter than the 10 s interval: only the last lines
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    work, items = proc.stderr.splitlines()  # "broken" stopped short, "hidden" is disabled: no line
    assert re.fullmatch(r"work: done, 100000/100000 step in \d+\.\d s, \d+ step/s, acc=0\.5", work), work
    assert re.fullmatch(r"items: done, 1000/1000 item in \d+\.\d s, \d+ item/s", items), items


def test_a_pipe_gets_a_line_every_interval_while_a_bar_moves():
    interval_s = 0.2
    proc = run_script(interval_s, 30, 0.05)  # 30 steps of >= 50 ms: >= 1.5 s
    assert proc.returncode == 0, proc.stderr
    elapsed_s = float(proc.stdout)
    assert "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    periodic = [line for line in lines if line.startswith("work: ") and "done" not in line]
    for line in periodic:
        assert re.fullmatch(r"work: \d+/30 step \(\d+%\) in \d+\.\d s, [\d.]+ step/s, \d+ s left", line), line
    assert 3 <= len(periodic) <= elapsed_s / interval_s  # lines keep coming, at most one per interval
    assert lines[len(periodic)].startswith("work: done, 30/30 step") and len(lines) == len(periodic) + 2


def test_a_terminal_still_gets_tqdm_frames():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns, as a terminal has
    try:
        process = subprocess.Popen([sys.executable, "-c", SCRIPT, "10", "20", "0.03"], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=follower)
    finally:
        os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    frames = shown.split(b"\r")
    assert sum(b"work: " in frame for frame in frames) >= 3 and b"20/20" in shown  # redrawn in place
    assert b"done," not in shown  # no plain lines on a terminal


def test_simulate_run_into_a_pipe_writes_a_line_per_finished_sweep(tmp_path):
    path = write_scenario(tmp_path, {
        "name": "tiny", "workload.epochs": 1, "workload.train_samples": 320, "network.uplink_mbps": [1.0, 10.0],
        "workload.models": [{"name": "vgg16", "split": "stage3"}, {"name": "resnet18", "split": "layer3_1"}]})
    proc = run_process("run", path, "--no-train")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert re.fullmatch(r"simulate tiny: done, 12/12 run in \d+\.\d s, [\d.]+ run/s\n", proc.stderr), proc.stderr
    quiet = run_process("run", path, "--no-train", "--no-progress")
    assert quiet.returncode == 0 and quiet.stderr == ""
