"""The edge memory model: a hand calculation, the measurements it is built from, and its
agreement with the real peak of hierarchical edge training."""
import dataclasses

import pytest
import torch
from hand_profiles import Block, Exit, hand_profile
from torch import nn

from simulator.costmodel.memory import MIB, edge_memory
from simulator.models import build_model
from simulator.models.split import split
from simulator.profiling.measure import measure_profile
from simulator.profiling.memory_probe import (
    SavedTensorMeter,
    allocation_rise_bytes,
    measure_edge_training_peak_bytes,
)
from simulator.profiling.schema import Profile


def memory_profile() -> Profile:
    """Two edge blocks and a head; batch 4, 10-byte raw samples, 1-byte labels (bytes)."""
    blocks = [Block("a", 1, 1, 1, out_numel=100, param_bytes=1000, saved_bytes=5000, bwd_peak_bytes=3000),
              Block("b", 1, 1, 1, out_numel=50, param_bytes=8000, saved_bytes=2000, bwd_peak_bytes=9000),
              Block("head", 1, 1, 1, out_numel=10, param_bytes=500, saved_bytes=100, bwd_peak_bytes=50)]
    exits = [Exit("a", 1, 1, 1, param_bytes=200, saved_bytes=300, bwd_peak_bytes=700),
             Exit("b", 1, 1, 1, param_bytes=100, saved_bytes=150, bwd_peak_bytes=400)]
    return hand_profile(blocks, exits, batch_size=4, input_shape=(1, 1, 10), raw_sample_bytes=10, label_bytes=1)


def test_memory_model_equals_a_hand_calculation():
    # Split after b, uplink buffer of 3 batches, fp32.
    #   W = 1000 + 8000 + exit 100 = 9100; O = 9100
    #   buffer = 3 * (4 * 50 * 4 + 4 * 1) = 3 * 804 = 2412; input = 4 * (10 + 1) = 44
    #   resident = 9100 + 9100 + 2412 + 44 = 20656
    #   phases: exit = (5000 + 2000) + 150 + 400 = 7550
    #           b    = 7000 + grads(exit 100) + out_b 800 + 9000 = 16900
    #           a    = 5000 + grads(100 + 8000) + out_a 1600 + 3000 = 17700
    #           step = 2 * 9100 = 18200
    #   peak = 20656 + 18200 = 38856, in the optimizer step
    memory = edge_memory(memory_profile(), "b", buffer_batches=3, codec="fp32")
    assert (memory.weights_bytes, memory.optimizer_bytes, memory.buffer_bytes, memory.input_bytes) == \
        (9100, 9100, 2412, 44)
    assert memory.activations_bytes == 7150
    assert (memory.peak_bytes, memory.peak_phase) == (38856, "step")
    # Split after a, int8 codec (1 byte per value + 8-byte header), buffer of 2 batches:
    #   W = 1000 + 200 = 1200; buffer = 2 * (400 + 8 + 4) = 824; resident = 2400 + 824 + 44 = 3268
    #   phases: exit = 5000 + 300 + 700 = 6000; a = 5000 + 200 + 1600 + 3000 = 9800; step = 2400
    memory = edge_memory(memory_profile(), "a", buffer_batches=2, codec="int8")
    assert (memory.peak_bytes, memory.peak_phase) == (3268 + 9800, "a")


def test_memory_model_needs_the_measured_fields():
    profile = memory_profile()
    old = dataclasses.replace(profile, layers=[dataclasses.replace(layer, saved_bytes=None) for layer in profile.layers])
    with pytest.raises(ValueError, match="re-run 'simulate profile'"):
        edge_memory(old, "a", 1)
    with pytest.raises(ValueError, match="not a separation point"):
        edge_memory(profile, "head", 1)


def test_saved_activations_of_a_tiny_model_equal_a_hand_count():
    conv, relu, pool = nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2)
    x = torch.randn(2, 1, 4, 4)
    meter = SavedTensorMeter(ignore=list(conv.parameters()))
    with meter.part():
        h = relu(conv(x))
    # conv keeps its input (2*1*4*4 fp32 = 128 B; its weight is a parameter), ReLU its output (2*2*4*4 = 256 B)
    assert meter.bytes == 128 + 256
    with meter.part():
        pool(h)
    # max-pool keeps its input (already counted) and the int64 argmax indices (2*2*2*2 * 8 B)
    assert meter.bytes == 128


def test_allocation_rise_sees_a_temporary_and_its_free():
    def make_and_drop(_):
        a = torch.empty(1_000_000, dtype=torch.uint8)
        b = torch.empty(3_000_000, dtype=torch.uint8)
        del a, b

    assert 4_000_000 <= allocation_rise_bytes(make_and_drop, torch.device("cpu")) < 4_100_000


@pytest.mark.parametrize("model_name", ["vgg16", "resnet18"])
def test_memory_model_is_within_15_percent_of_the_measured_peak(model_name):
    profile = measure_profile(model_name, "fashion-mnist", 8, repeats=1, warmup=0, width=0.125, progress=False)
    assert all(layer.saved_bytes > 0 and layer.bwd_peak_bytes > 0 for layer in profile.layers)
    for point in profile.layer_names[:-1:2]:
        predicted = edge_memory(profile, point, buffer_batches=4).peak_bytes
        torch.manual_seed(0)
        model = build_model(model_name, "fashion-mnist", 0.125)
        measured = measure_edge_training_peak_bytes(model, split(model, point), 8, 10, 4, "fp32",
                                                    torch.device("cpu"))
        assert abs(predicted / measured - 1) <= 0.15, (point, predicted / MIB, measured / MIB)
