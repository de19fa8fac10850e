"""A scenario's sweep over models x methods x uplink rates, and the choice of separation point.

    points         SweepPoint and run_spec: the runs of a scenario, built one way for every caller
    choose_split   the choice rule for `split: auto` (pure: accuracy comes in as a function)
    split_table    every separation point at every rate: time, memory, bytes, accuracy; the choice
    split_command  `simulate split`
    runner         `simulate run`: the sweep, results.csv, training.csv, the terminal summary
    outputs        trace.csv, backlog.csv, epochs.csv and scenario.json
"""
