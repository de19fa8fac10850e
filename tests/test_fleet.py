"""The fleet engine: one edge is the single-edge simulation; N edges against hand-computed times
(own links, a shared cell, a saturated cloud, turns and hand-overs, averaging traffic)."""
import dataclasses
import math

import pytest
import simpy
from hand_profiles import tiny_costs

from simulator.costmodel import LinkSpec
from simulator.costmodel.costs import cloud_train_s, split_learning_batch_s
from simulator.fleet.cloud import CloudQueue
from simulator.fleet.engine import simulate_fleet
from simulator.fleet.spec import EdgeGroupSpec, FleetSpec
from simulator.sim import RunSpec
from simulator.sim.cell import Cell
from simulator.sim.engine import simulate

COSTS = tiny_costs(label_bytes=1)  # payloads 1001 bytes; edge train 36 ms, cloud 7 ms (hand_profiles)
UP, DOWN = LinkSpec(rate_mbps=1.0, latency_ms=5.0), LinkSpec(rate_mbps=2.0, latency_ms=3.0)
CONFIGS = [("full_cloud", "once"), ("full_cloud", "every_epoch"), ("split_learning", "once"), ("hierarchical", "once")]
NOISY = {"jitter_ms": 3.0, "loss_rate": 0.01, "retransmit_timeout_ms": 5.0}


def run(method: str, raw_upload: str = "once", **kwargs) -> RunSpec:
    kwargs = {"batches_per_epoch": 7, "epochs": 3, "uplink_buffer_batches": 2, "seed": 5, **kwargs}
    return RunSpec(method, COSTS, kwargs.pop("uplink", UP), kwargs.pop("downlink", DOWN), raw_upload=raw_upload,
                   **kwargs)


def fleet(spec: RunSpec, count: int = 1, weight_bytes: int = 0, **kwargs) -> FleetSpec:
    return FleetSpec(spec.method, (EdgeGroupSpec("g", count, spec, weight_bytes),), **kwargs)


@pytest.mark.parametrize("method, raw_upload", CONFIGS)
@pytest.mark.parametrize("edge_has_gpu", [False, True])
@pytest.mark.parametrize("noisy", [False, True])
def test_one_edge_is_the_single_edge_simulation(method, raw_upload, edge_has_gpu, noisy):
    links = {"uplink": dataclasses.replace(UP, **NOISY), "downlink": dataclasses.replace(DOWN, **NOISY)} if noisy else {}
    spec = run(method, raw_upload, edge_has_gpu=edge_has_gpu, **links)
    single, one = simulate(spec), simulate_fleet(fleet(spec, weight_bytes=10_000, edge_sync="epoch",
                                                       split_learning="parallel"))
    edge = one.edges[0]
    assert one.total_time_s == pytest.approx(single.total_time_s, rel=1e-12)
    assert (edge.bytes_up, edge.bytes_down) == (single.bytes_up, single.bytes_down)  # no weights for one edge
    assert one.cloud_busy_s == pytest.approx(single.cloud_busy_s, rel=1e-12)
    assert edge.batches_trained == single.cloud_batches_trained == 21
    assert edge.wait_cell_s == 0 and edge.sync_bytes == 0


@pytest.mark.parametrize("n", [2, 5])
def test_identical_edges_with_enough_gpus_each_take_the_single_edge_time(n):
    spec = run("hierarchical")
    single = simulate(spec).total_time_s
    result = simulate_fleet(fleet(spec, count=n, cloud_gpus=n))
    assert [e.total_time_s for e in result.edges] == pytest.approx([single] * n, rel=1e-12)
    assert result.cloud_busy_s == pytest.approx(n * 21 * 7e-3)
    # one GPU, unsaturated (n x 7 ms of cloud work per 37 ms edge batch): at most the last arrivals' queue
    one_gpu = simulate_fleet(fleet(spec, count=n))
    assert single <= one_gpu.total_time_s <= single + (n - 1) * 7e-3 + 1e-12
    assert one_gpu.cloud_offered_load == pytest.approx(n * 7 / 37)  # CPU edge: prep 1 + train 36 ms per batch


def test_a_saturated_cloud_takes_at_least_its_work():
    cheap = dataclasses.replace(COSTS, edge_fwd_s=0.0, edge_bwd_s=0.0, edge_step_s=0.0, exit_fwd_s=0.0,
                                exit_bwd_s=0.0, exit_step_s=0.0, edge_prep_s=0.0, cloud_fwd_s=0.05)
    spec = dataclasses.replace(run("hierarchical"), costs=cheap, uplink=LinkSpec(rate_mbps=100.0))
    n = 10
    result = simulate_fleet(fleet(spec, count=n))
    work_s = cloud_train_s(cheap, "hierarchical") * 21  # per edge
    assert result.total_time_s >= n * work_s
    assert result.total_time_s == pytest.approx(n * work_s, rel=0.02)  # and little more: the cloud is the bottleneck
    assert result.cloud_utilisation > 0.98 and result.cloud_offered_load > 1
    two = simulate_fleet(fleet(spec, count=n, cloud_gpus=2))
    assert two.total_time_s >= n * work_s / 2 and two.total_time_s < 0.6 * result.total_time_s


def test_sequential_split_learning_is_the_sum_of_turns_and_hand_overs():
    slow_up = LinkSpec(rate_mbps=0.5, latency_ms=20.0)
    a = run("split_learning", batches_per_epoch=4)
    b = run("split_learning", batches_per_epoch=6, uplink=slow_up)
    weights = 50_000
    spec = FleetSpec("split_learning", (EdgeGroupSpec("a", 2, a, weights), EdgeGroupSpec("b", 1, b, weights)))
    result = simulate_fleet(spec)
    turn_a = 4 * split_learning_batch_s(COSTS, UP, DOWN)
    turn_b = 6 * split_learning_batch_s(COSTS, slow_up, DOWN)
    # hand-overs each epoch: a0 -> a1 -> b, then b -> a0 before epochs 2 and 3 (none before the first turn)
    up_a, up_b = weights * 8 / 1e6 + 0.005, weights * 8 / 0.5e6 + 0.020
    down = weights * 8 / 2e6 + 0.003
    hand_overs = 3 * (2 * up_a + 2 * down) + 2 * (up_b + down)
    assert result.total_time_s == pytest.approx(3 * (2 * turn_a + turn_b) + hand_overs, rel=1e-9)
    # a0 sends 3 times and receives twice; a1 receives and sends 3 times; b receives 3 times and sends twice
    assert [e.sync_bytes for e in result.edges] == [5 * weights, 6 * weights, 5 * weights]
    # one edge at a time: the busiest turn, group a's
    assert result.cloud_offered_load == pytest.approx(7e-3 / (split_learning_batch_s(COSTS, UP, DOWN) - 7e-3))


@pytest.mark.parametrize("method, mode", [("split_learning", {"split_learning": "parallel"}),
                                          ("hierarchical", {"edge_sync": "epoch"})])
def test_averaging_sends_every_edge_part_up_and_the_average_down_each_epoch(method, mode):
    spec, n, weights = run(method), 3, 20_000
    synced, barrier_only = simulate_fleet(fleet(spec, n, weights, **mode)), simulate_fleet(fleet(spec, n, 0, **mode))
    gradients = 21 * 1000 if method == "split_learning" else 0
    for edge in synced.edges:
        assert edge.sync_bytes == 3 * 2 * weights  # 3 epochs, up and down
        assert (edge.bytes_up, edge.bytes_down) == (21 * 1001 + 3 * weights, gradients + 3 * weights)
    assert synced.total_time_s > barrier_only.total_time_s
    if method == "hierarchical":  # without averaging, no edge waits for the others
        assert barrier_only.total_time_s >= simulate_fleet(fleet(spec, n, weights)).total_time_s


def test_n_edges_in_a_cell_each_send_at_its_share():
    env, finished = simpy.Environment(), []
    cell = Cell(env, capacity_bps=4e6)

    def edge(name: str, bits: float, cap_bps: float, start_s: float = 0.0):
        yield env.timeout(start_s)
        yield from cell.transfer(bits, cap_bps)
        finished.append((name, env.now))

    for i in range(4):  # 4 edges of 1e6 bits in a 4 Mbit/s cell, own links 10 Mbit/s: 1 Mbit/s each
        env.process(edge(f"e{i}", 1e6, 10e6))
    env.run()
    assert finished == [(f"e{i}", pytest.approx(1.0)) for i in range(4)]


def test_the_cell_gives_a_slow_link_its_rate_and_the_rest_to_the_others():
    env, finished = simpy.Environment(), {}
    cell = Cell(env, capacity_bps=3e6)

    def edge(name: str, bits: float, cap_bps: float, start_s: float = 0.0):
        yield env.timeout(start_s)
        yield from cell.transfer(bits, cap_bps)
        finished[name] = env.now

    env.process(edge("slow", 0.5e6, 0.5e6))  # capped at 0.5: the others share 2.5 -> 1.25 each
    env.process(edge("a", 2.5e6, 10e6))
    env.process(edge("b", 1.25e6, 10e6))
    env.process(edge("late", 1.5e6, 10e6, start_s=1.0))
    env.run()
    # t=0..1: slow 0.5 (done at 1), a and b 1.25 each (b done at 1); from 1: a (1.25e6 left) and late
    # share 3 Mbit/s: 1.5 each; a ends at 1 + 1.25/1.5, late then alone at 3 Mbit/s for its last bits
    a_end = 1 + 1.25 / 1.5
    assert finished["slow"] == pytest.approx(1.0) and finished["b"] == pytest.approx(1.0)
    assert finished["a"] == pytest.approx(a_end)
    assert finished["late"] == pytest.approx(a_end + (1.5e6 - 1.5e6 * (a_end - 1)) / 3e6)


def test_identical_edges_in_a_cell_take_turns_at_the_cell_rate():
    spec = run("full_cloud", "once", uplink=LinkSpec(rate_mbps=8.0))
    n, cell_mbps = 4, 2.0
    result = simulate_fleet(fleet(spec, count=n, cell_uplink_mbps=cell_mbps))
    upload_s = n * 7 * 1001 * 8 / (cell_mbps * 1e6)  # every raw byte through the cell
    assert result.total_time_s == pytest.approx(upload_s + n * 21 * 14e-3, rel=1e-9)
    alone_s = 7 * 1001 * 8 / 8e6
    assert [e.wait_cell_s for e in result.edges] == pytest.approx([upload_s - alone_s] * n, rel=1e-9)


@pytest.mark.parametrize("order, expected", [("fifo", [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]),
                                             ("round_robin", [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)])])
def test_the_cloud_queue_order(order, expected):
    env, taken = simpy.Environment(), []
    queue = CloudQueue(env, 2, order)
    for edge, batch in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]:
        queue.put(edge, batch)

    def gpu():
        for _ in range(5):
            edge, batch, _ = yield queue.get()
            taken.append((edge, batch))
            yield env.timeout(1)

    env.process(gpu())
    env.run()
    assert taken == expected


def test_an_idle_gpu_takes_a_batch_the_moment_it_arrives():
    env, log = simpy.Environment(), []
    queue = CloudQueue(env, 1, "round_robin")

    def gpu():
        edge, batch, delivered_s = yield queue.get()
        log.append((edge, batch, delivered_s, env.now))

    def edge():
        yield env.timeout(2.5)
        queue.put(0, 7)

    env.process(gpu())
    env.process(edge())
    env.run()
    assert log == [(0, 7, 2.5, 2.5)]


def test_heterogeneous_edges_differ_and_the_slow_one_ends_last():
    fast = run("hierarchical", uplink=LinkSpec(rate_mbps=10.0), edge_has_gpu=True)
    slow = run("hierarchical", uplink=LinkSpec(rate_mbps=0.1))
    spec = FleetSpec("hierarchical", (EdgeGroupSpec("fast", 3, fast), EdgeGroupSpec("slow", 2, slow)),
                     cloud_order="round_robin")
    result = simulate_fleet(spec)
    fast_t, slow_t = [e.total_time_s for e in result.edges[:3]], [e.total_time_s for e in result.edges[3:]]
    assert max(fast_t) < min(slow_t)
    single = simulate(slow).total_time_s  # the two slow edges' last batches arrive together: one waits 7 ms
    assert sorted(slow_t) == pytest.approx([single, single + 7e-3], rel=1e-9)
    assert result.total_time_s == max(slow_t)
    assert math.isclose(sum(e.batches_trained for e in result.edges), 5 * 21)


def test_a_dropping_uplink_never_drops_weights():
    spec = run("hierarchical", uplink=LinkSpec(rate_mbps=0.05, latency_ms=5.0), uplink_buffer_batches=2,
               uplink_buffer_policy="drop_oldest")
    result = simulate_fleet(fleet(spec, 3, 20_000, edge_sync="epoch"))
    assert sum(e.batches_dropped for e in result.edges) > 0  # the link is too slow for the features
    assert [e.sync_bytes for e in result.edges] == [3 * 2 * 20_000] * 3  # every round completed
    assert all(e.batches_trained + e.batches_dropped == 21 for e in result.edges)
