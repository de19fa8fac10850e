"""Property tests: on a deterministic network the simulation equals the closed form."""
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.costmodel import BatchCosts, LinkSpec
from simulator.costmodel.costs import PartSteps
from simulator.sim import RunSpec, simulate

seconds = st.floats(min_value=0.0, max_value=0.05, allow_nan=False)
payload_bytes = st.integers(min_value=0, max_value=100_000)


@st.composite
def batch_costs(draw) -> BatchCosts:
    """Arbitrary per-batch costs: every time in [0, 50] ms, every payload in [0, 100 kB]."""
    values = {"part_steps": draw(st.none() | st.builds(PartSteps, *[seconds] * len(dataclasses.fields(PartSteps))))}
    for field in dataclasses.fields(BatchCosts):
        if field.name == "part_steps":
            continue
        if field.name == "batch_size":
            values[field.name] = draw(st.integers(1, 64))
        else:
            values[field.name] = draw(seconds if field.name.endswith("_s") else payload_bytes)
    return BatchCosts(**values)


links = st.builds(LinkSpec, rate_mbps=st.floats(min_value=0.1, max_value=1000.0),
                  latency_ms=st.floats(min_value=0.0, max_value=50.0))
run_specs = st.builds(
    RunSpec, method=st.sampled_from(["full_cloud", "split_learning", "hierarchical"]), costs=batch_costs(),
    uplink=links, downlink=links, batches_per_epoch=st.integers(1, 25), epochs=st.integers(1, 3),
    uplink_buffer_batches=st.integers(1, 8), edge_has_gpu=st.booleans(),
    raw_upload=st.sampled_from(["once", "every_epoch"]), fast_forward=st.booleans(), trace_batches=st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(run_specs)
def test_simulation_equals_closed_form(spec):
    result = simulate(spec)
    assert result.total_time_s == pytest.approx(result.analytic_time_s, rel=1e-9, abs=1e-12)
    assert result.cloud_batches_trained == spec.epochs * spec.batches_per_epoch


@settings(max_examples=40, deadline=None)
@given(run_specs, st.floats(min_value=1.0, max_value=100.0))
def test_higher_uplink_rate_never_takes_longer(spec, factor):
    faster = dataclasses.replace(spec, uplink=dataclasses.replace(spec.uplink, rate_mbps=spec.uplink.rate_mbps * factor))
    assert simulate(faster).total_time_s <= simulate(spec).total_time_s * (1 + 1e-12) + 1e-15
