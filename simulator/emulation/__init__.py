"""Real two-process runs of the three methods, against the simulator's prediction.

    channel     frames over torch.distributed (gloo, TCP); connect, send, receive, timeouts
    pacing      PacedLink: the simulator's link (FIFO buffer, serialisation, latency) in real time
    payloads    the bytes on the wire, exactly the bytes the simulator charges
    compute     each worker's per-batch computation (MethodTrainer's step, cut at the network)
    session     the run request both workers agree on, the model, the optimizer, run records
    edge        the edge worker: drives the runs, trains the edge part, paces the uplink
    cloud       the cloud worker: serves runs, trains the cloud part, paces the downlink
    part_steps  each worker's whole per-batch step, timed in one piece (costs.PartSteps)
    validation  the simulator's prediction per run, validation.csv, fig_validation.png
    launcher    `simulate emulate` / `simulate emulate-worker`: processes, clean-up
"""
