"""Names shared across the simulator, defined once: a typo fails at import, not deep in a run.

Methods are the three ways of splitting training between the edge and the cloud. The
simulation's resources and the work they do are the `resource` and `what` columns of
trace.csv; a stage is one (resource, what) pair, e.g. (UPLINK, SEND).
"""
import typing
from typing import Literal

Method = Literal["full_cloud", "split_learning", "hierarchical"]
METHODS: tuple[str, ...] = typing.get_args(Method)
FULL_CLOUD, SPLIT_LEARNING, HIERARCHICAL = METHODS

# Resources: the edge's CPU and (with `edge.compute: gpu`) GPU, the two link directions, the cloud's GPU.
EDGE_CPU, EDGE_GPU, UPLINK, DOWNLINK, CLOUD_GPU = "edge_cpu", "edge_gpu", "uplink", "downlink", "cloud_gpu"

# What a resource does with one batch.
PREP, FORWARD, BACKWARD, TRAIN, SEND, PROPAGATE = "prep", "forward", "backward", "train", "send", "propagate"

Stage = tuple[str, str]  # (resource, what)

# Fleets (README, "Fleets"): how the methods run across many edges.
SplitLearningMode = Literal["sequential", "parallel"]  # edges take turns, or SplitFed (all at once)
SPLIT_LEARNING_MODES: tuple[str, ...] = typing.get_args(SplitLearningMode)
CloudOrder = Literal["fifo", "round_robin"]  # the order the cloud trains the edges' delivered batches
CLOUD_ORDERS: tuple[str, ...] = typing.get_args(CloudOrder)
EdgeSync = Literal["none", "epoch"]  # hierarchical: average the edge parts never, or at each epoch's end
EDGE_SYNCS: tuple[str, ...] = typing.get_args(EdgeSync)

AUTO = "auto"  # `split: auto` in a scenario: the separation point is chosen per bit rate (sweep.choose_split)


def edge_compute(has_gpu: bool) -> str:
    """The edge resource that runs forward, backward and the optimizer step: its GPU, or its CPU without one."""
    return EDGE_GPU if has_gpu else EDGE_CPU

# The paper's two hand-split models (models/vgg.py, models/resnet.py): the only ones the width
# multiplier scales. Here so that reports can tell them apart without importing torch.
PAPER_MODEL_NAMES = ("vgg16", "resnet18")
