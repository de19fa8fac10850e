"""Real two-process runs of the three methods, against the simulator's prediction.

    channel     frames over torch.distributed (gloo, TCP); connect, send, receive, timeouts
    pacing      PacedLink: the simulator's link (FIFO buffer and its drop policy, serialisation at
                a rate or by a trace, outages, latency) in real time
    payloads    the bytes on the wire, exactly the bytes the simulator charges
    compute     each worker's per-batch computation (MethodTrainer's step, cut at the network)
    session     the run request both workers agree on (point, threads), the model, run records
    plan        the runs of a session: model x rate x method, `split: auto` chosen per rate
    hosts       which machine and torch build a measurement comes from
    part_steps  each worker's whole per-batch step, timed in one piece: busy and after a wait
    steps_file  measured part steps (`part_steps.json`), refused from another host
    measuring   the start of a session: both workers measure their part steps, each where it runs
    edge        the edge worker: drives the runs, trains the edge part, paces the uplink
    cloud       the cloud worker: serves runs and measurements, trains the cloud part, paces the downlink
    prediction  the simulation of a run from the part steps (wake-up cost included); structural re-run
    validation  validation.csv, fig_validation.png
    processes   starting and stopping the workers, each on cores of its own
    launcher    `simulate emulate` / `simulate emulate-worker`: plan, workers, table
"""
