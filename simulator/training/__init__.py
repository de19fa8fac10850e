"""Real PyTorch training of every method, for the accuracy in every result row.

    optimizer  OptimizerConfig and the one place SGD is built
    methods    MethodTrainer: one training step of full-cloud, split learning or hierarchical training
    runs       TrainingRun (everything that affects a run, and so its cache key), the on-disk cache,
               and TrainingResults: a scenario's runs, each trained the first time it is needed
    skips      which batches the cloud skips when the uplink dropped them, their text form (part of
               the cache key) and the mapping of a simulated run's drops onto the proxy's batches
    partition  a fleet's data split across its edges: IID or per-class Dirichlet
    fleet_trainer  FleetTrainer: a fleet's edge parts (and exits) around one shared cloud part
    fleet      FleetTrainingRun / FleetTrainingResult, their cache, and `fleet_accuracy`
"""
