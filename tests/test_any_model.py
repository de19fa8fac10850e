"""Any model: torchvision's classifiers and users' own networks, traced and cut at their
separation points (models/graph.py, models/registry.py), profiled, simulated and trained.

The expectations are independent of the code under test: the original torchvision module's
output and FLOP count, hand-written lists of separation points, hand-computed parameter counts.
"""
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import (
    ROOT,
    assert_user_error,
    needs_fashion_mnist,
    run_in_process,
    run_process,
    write_scenario,
)
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from user_models import TINY_NET_POINTS

from simulator.core.errors import UserError
from simulator.models import build_model, early_exit_param_count, split
from simulator.models.blocks import BlockNet
from simulator.models.graph import traced_parts
from simulator.models.registry import instantiate
from simulator.profiling.measure import measure_profile
from simulator.scenario.build import profile_file

TINY_NET = "tests.user_models:tiny_net"
CLASSES = 10

# torchvision models at 32 x 32 pixels (vit_b_16 needs a multiple of its 16-pixel patch) and
# their separation points, written out by hand from the architectures.
POINTS = {
    "mobilenet_v2": [f"features.{i}" for i in range(19)] + ["classifier.0"],
    "efficientnet_b0": [f"features.{i}" for i in range(9)] + ["avgpool", "classifier.0"],
    "resnet50": ["conv1", "bn1", "relu", "maxpool"] + [f"layer{stage}.{block}" for stage, blocks in
                                                       ((1, 3), (2, 4), (3, 6), (4, 3)) for block in range(blocks)]
                + ["avgpool"],
    # conv_proj is not a point: the batch size read from the input's shape is used after it
    "vit_b_16": ["encoder.dropout"] + [f"encoder.layers.encoder_layer_{i}" for i in range(12)] + ["encoder.ln"],
}
SIZE = 32


@pytest.fixture(autouse=True)
def in_repository_root(monkeypatch):
    """`tests.user_models:FACTORY` imports from the current folder, as a user's module from theirs."""
    monkeypatch.chdir(ROOT)


def torchvision_net(arch: str, channels: int = 3) -> tuple[nn.Module, BlockNet]:
    """(the torchvision module, the same module cut into a BlockNet of traced parts)."""
    torch.manual_seed(0)
    model = instantiate(arch, "torchvision", CLASSES, SIZE)
    shape = (channels, SIZE, SIZE)
    parts, points = traced_parts(model, shape, arch, repeat_to=3 if channels != 3 else None)
    assert points == list(parts)[:-1]
    return model, BlockNet(arch, parts, shape, CLASSES, 1.0, source="torchvision")


def forward_flops(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(x)
    return out, counter.get_total_flops()


@pytest.mark.parametrize("arch", POINTS)
def test_edge_then_cloud_is_the_whole_model_at_every_point(arch):
    model, net = torchvision_net(arch)
    assert net.split_points == POINTS[arch]
    model.eval()
    net.eval()  # the parts share the modules; this sets their own flags too
    x = torch.randn(3, 3, SIZE, SIZE)  # 3 samples: the parts were traced with 2, and must not depend on it
    with torch.no_grad():
        whole = model(x)
        assert whole.shape == (3, CLASSES) and torch.isfinite(whole).all()
        for point in net.split_points:
            parts = split(net, point)
            features = parts.edge(x)
            assert tuple(features.shape[1:]) == net.feature(point).shape, point
            assert torch.equal(parts.cloud(features), whole), point


@pytest.mark.parametrize("arch", POINTS)
def test_parts_hold_every_parameter_once_and_train_from_a_received_batch(arch):
    """Each parameter belongs to exactly one part, and every part trains from an input that is a
    leaf tensor (a feature batch received over the link): all parameters and every received
    batch get a gradient."""
    model, net = torchvision_net(arch)
    owners: dict[int, list[str]] = {}
    for name in net.block_names:
        for p in net.block(name).parameters():
            owners.setdefault(id(p), []).append(name)
    assert {id(p) for p in model.parameters()} == set(owners)
    assert all(len(names) == 1 for names in owners.values())

    net.train()
    x, received, sent = torch.randn(2, 3, SIZE, SIZE), [], []
    for index, name in enumerate(net.block_names):
        x = x.detach().requires_grad_(index > 0)  # as the next part receives it
        received.append(x)
        x = net.block(name)(x)
        sent.append(x)
    nn.functional.cross_entropy(x, torch.arange(2)).backward()
    for index in reversed(range(len(sent) - 1)):  # each gradient sent back to the part before
        assert received[index + 1].grad is not None, net.block_names[index]
        sent[index].backward(received[index + 1].grad)
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("arch", POINTS)
def test_part_flops_add_up_to_the_whole_model(arch):
    model, net = torchvision_net(arch)
    model.eval()
    net.eval()  # the parts share the modules; this sets their own flags too
    x = torch.randn(2, 3, SIZE, SIZE)
    whole, whole_flops = forward_flops(model, x)
    total = 0
    for name in net.block_names:
        x, flops = forward_flops(net.block(name), x)
        total += flops
    assert whole_flops > 0 and total == whole_flops
    assert torch.equal(x, whole)


# --- profiles: backward FLOPs ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_profile():
    """mobilenet_v3_small on Fashion-MNIST resized to 32 x 32, batch 2, one timed repeat."""
    torch.manual_seed(0)
    return measure_profile("mobilenet_v3_small", "fashion-mnist", 2, repeats=1, warmup=0, progress=False,
                           input_size=SIZE)


def compute_parts(profile) -> tuple[list[str], list[str]]:
    """(parts holding convolutions or linear layers with groups == 1, parts holding grouped
    (depthwise) convolutions), after the first part."""
    net = build_model(profile.model, profile.dataset, input_size=SIZE)
    dense, grouped = [], []
    for name in net.block_names[1:]:
        modules = list(net.block(name).modules())
        if any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in modules):
            grouped.append(name)
        elif any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in modules):
            dense.append(name)
    return dense, grouped


def test_profile_of_a_torchvision_model_at_another_size(small_profile):
    net = build_model("mobilenet_v3_small", "fashion-mnist", input_size=SIZE)
    assert small_profile.layer_names == net.block_names
    assert small_profile.input_shape == [1, SIZE, SIZE]
    assert small_profile.raw_sample_bytes == SIZE * SIZE  # the grey image is sent, not its RGB copy
    assert [e.after for e in small_profile.exits] == net.split_points
    assert small_profile.layers[0].out_shape == [2, 16, SIZE // 2, SIZE // 2]


def test_backward_costs_about_twice_the_forward(small_profile):
    """Backward computes the gradient of the input and of the weights, each as costly as the
    forward; the first part's input is data and needs no gradient."""
    layers = {layer.name: layer for layer in small_profile.layers}
    dense, _ = compute_parts(small_profile)
    assert dense  # features.12 (a 1x1 conv) and the classifier's linear layers
    for name in dense:
        assert 1.8 <= layers[name].bwd_flops / layers[name].fwd_flops <= 2.2, name
    first = small_profile.layers[0]
    assert first.fwd_flops > 0 and first.bwd_flops == pytest.approx(first.fwd_flops, rel=0.1)
    for head in small_profile.exits:
        assert 1.8 <= head.bwd_flops / head.fwd_flops <= 2.2, head.after


def test_backward_of_depthwise_parts_costs_about_twice_the_forward(small_profile):
    layers = {layer.name: layer for layer in small_profile.layers}
    _, grouped = compute_parts(small_profile)
    assert grouped  # the inverted residual blocks features.1 to features.11
    ratios = {name: layers[name].bwd_flops / layers[name].fwd_flops for name in grouped}
    assert all(1.8 <= ratio <= 2.2 for ratio in ratios.values()), ratios


# --- a user's model, end to end ------------------------------------------------------------


def test_a_user_model_is_cut_where_only_one_value_crosses():
    torch.manual_seed(0)
    net = build_model(TINY_NET, "fashion-mnist")
    assert net.source == "import" and net.input_shape == (1, 28, 28)
    assert net.block_names == TINY_NET_POINTS + ["head.1"]
    assert net.split_points == TINY_NET_POINTS
    assert [f.shape for f in net.feature_info] == [(8, 28, 28), (8, 28, 28), (8, 4, 4), (128,), (10,)]


def test_a_user_model_on_three_channels_gets_the_grey_image_repeated():
    torch.manual_seed(0)
    net = build_model("tests.user_models:tiny_rgb_net", "fashion-mnist").eval()
    assert net.input_shape == (1, 28, 28) and net.split_points == TINY_NET_POINTS
    x = torch.rand(2, 1, 28, 28)
    conv = net.block("conv1")
    assert torch.equal(conv(x), conv.get_submodule("conv1")(x.expand(-1, 3, -1, -1)))


@pytest.fixture(scope="module")
def user_profiles(tmp_path_factory):
    """tiny_net measured here (as the edge) and derived for an A100 (the cloud), by the CLI."""
    folder = tmp_path_factory.mktemp("user_profiles")
    edge, cloud = folder / "edge.json", folder / "cloud.json"
    proc = run_process("profile", "--model", TINY_NET, "--dataset", "fashion-mnist", "--batch-size", 32,
                       "--repeats", 1, "--warmup", 0, "--threads", 1, "--out", edge, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = run_in_process("profile", "--derive", "a100", "--from", edge, "--out", cloud)
    assert proc.returncode == 0, proc.stderr
    return edge, cloud


def test_user_model_profile_names_its_blocks(user_profiles):
    edge, cloud = (json.loads(path.read_text()) for path in user_profiles)
    for profile in edge, cloud:
        assert profile["model"] == TINY_NET and profile["dataset"] == "fashion-mnist"
        assert [layer["name"] for layer in profile["layers"]] == TINY_NET_POINTS + ["head.1"]
        assert [head["after"] for head in profile["exits"]] == TINY_NET_POINTS
        assert profile["input_shape"] == [1, 28, 28] and profile["raw_sample_bytes"] == 784
    assert edge["source"] == "measured" and cloud["source"] == "derived"
    # conv1: 3 x 3 x 1 x 8 multiply-adds (2 FLOPs each) per pixel, 32 images of 28 x 28
    assert edge["layers"][0]["fwd_flops"] == 2 * 9 * 8 * 28 * 28 * 32


def user_scenario(folder: Path, profiles: tuple[Path, Path]) -> Path:
    """A scenario simulating tiny_net with `split: auto`, trained for 1 epoch on 200 samples."""
    edge, cloud = profiles
    return write_scenario(folder, {
        "description": "a user's model by import path",
        "workload.dataset": "fashion-mnist",
        "workload.epochs": 2,
        "workload.models": [{"name": TINY_NET, "split": "auto"}],
        "edge.name": "this CPU (measured)",
        "edge.compute": "cpu",
        "edge.profiles": {TINY_NET: str(edge)},
        "cloud.profiles": {TINY_NET: str(cloud)},
        "network.uplink_mbps": [1.0, 100.0],
        "accuracy": {"dataset": "fashion-mnist", "epochs": 1, "train_subset": 200, "test_subset": 100,
                     "device": "cpu"},
    })


def test_user_model_runs_through_a_scenario(user_profiles, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATOR_CACHE", str(tmp_path / "cache"))
    path = user_scenario(tmp_path, user_profiles)
    proc = run_process("run", path, "--no-train", "--no-progress", "--workers", 1)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    assert set(table.model) == {TINY_NET}
    assert set(table.method) == {"full_cloud", "split_learning", "hierarchical"}
    assert (table[table.method == "full_cloud"].split == "").all()
    assert set(table[table.method != "full_cloud"].split) <= set(TINY_NET_POINTS)
    assert (table.total_time_s.astype(float) > 0).all()
    assert (table.final_accuracy == "").all()


@needs_fashion_mnist
def test_user_model_trains_for_its_accuracy_columns(user_profiles, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATOR_CACHE", str(tmp_path / "cache"))
    path = user_scenario(tmp_path, user_profiles)
    proc = run_process("run", path, "--no-progress", "--workers", 1)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(table.model) == {TINY_NET}
    assert set(table[table.method != "full_cloud"].split) <= set(TINY_NET_POINTS)
    assert table.final_accuracy.between(0, 1).all()
    assert table[table.method == "hierarchical"].early_exit_accuracy.between(0, 1).all()
    assert (table.accuracy_width == 1.0).all()  # a user's model trains at its own width
    assert list((tmp_path / "cache" / "training").glob("tests.user_models.tiny_net-*.json"))


def test_profile_file_names_carry_the_model_slug_and_size():
    assert profile_file("a100", "vgg16", "cifar10", 32) == "profiles/a100_vgg16_cifar10_b32.json"
    assert (profile_file("epyc-2t", TINY_NET, "fashion-mnist", 32, 64)
            == "profiles/epyc-2t_tests.user_models.tiny_net_fashion-mnist_64px_b32.json")


# --- errors ------------------------------------------------------------------------------


def test_unknown_model_names_close_matches():
    proc = run_process("models", "--model", "mobilenetv2")
    assert_user_error(proc, "mobilenetv2", "mobilenet_v2")


def test_scenario_with_an_unknown_model_names_the_file_and_key(cli, tmp_path):
    path = write_scenario(tmp_path, {"workload.models": [{"name": "resnet5O", "split": "auto"}]})
    assert_user_error(cli("validate", path), str(path), "workload.models[0].name", "resnet50")


def test_untraceable_model_points_at_declared_points():
    with pytest.raises(UserError) as error:
        build_model("tests.user_models:dynamic_net", "fashion-mnist")
    assert "tests.user_models:dynamic_net" in str(error.value)
    assert "workload.models[].points" in str(error.value)


def test_declared_points_make_an_untraceable_model_work():
    """gated_net's body has an `if` on its data; declared a point, the body is not traced into."""
    name = "tests.user_models:gated_net"
    with pytest.raises(UserError, match="workload.models"):
        build_model(name, "fashion-mnist")
    net = build_model(name, "fashion-mnist", points=("stem", "body"))
    assert net.block_names == ["stem", "body", "fc"] and net.split_points == ["stem", "body"]

    torch.manual_seed(0)
    model = instantiate(name, "import", CLASSES, 28).eval()
    parts, _ = traced_parts(model, (1, 28, 28), name, points=("stem", "body"))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        y = x
        for part in parts.values():
            y = part(y)
        assert torch.equal(y, model(x))


@pytest.mark.parametrize("points,message", [
    (("conv2a",), "'conv2a' cannot be a separation point"),  # inside the residual branch
    (("pool", "conv1"), "execution order: conv1, pool"),
])
def test_declared_points_are_checked(points, message):
    with pytest.raises(UserError, match=message):
        build_model(TINY_NET, "fashion-mnist", points=points)


def test_paper_models_refuse_declared_points():
    with pytest.raises(UserError, match="hand-split"):
        build_model("vgg16", "cifar10", points=("stage1",))


def test_input_size_must_be_positive(cli, tmp_path):
    assert_user_error(cli("models", "--model", "mobilenet_v2", "--input-size", "0"), "--input-size")
    path = write_scenario(tmp_path, {"workload.input_size": 0})
    assert_user_error(cli("validate", path), str(path), "workload.input_size")


def test_a_model_that_does_not_run_at_the_size_is_one_line_with_the_cause(cli):
    assert_user_error(cli("models", "--model", TINY_NET, "--dataset", "cifar10"), TINY_NET, "3x32x32",
                      "to have 1 channels")


def test_a_model_run_on_repeated_channels_prints_no_traceback(cli):
    proc = cli("models", "--model", "tests.user_models:tiny_rgb_net", "--dataset", "fashion-mnist")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_vit_at_a_size_off_its_patch_grid_is_a_user_error(cli):
    assert_user_error(cli("models", "--model", "vit_b_16", "--input-size", "20"), "vit_b_16")


# --- Fashion-MNIST on a torchvision model ------------------------------------------------


def test_grey_images_are_repeated_to_rgb_inside_the_first_part():
    model, net = torchvision_net("mobilenet_v2", channels=1)
    model.eval()
    net.eval()  # the parts share the modules; this sets their own flags too
    assert net.input_shape == (1, SIZE, SIZE)
    x = torch.rand(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(net(x), model(x.repeat(1, 3, 1, 1)))


def test_models_command_shows_the_grey_raw_sample(cli):
    proc = cli("models", "--model", "mobilenet_v2", "--dataset", "fashion-mnist", "--input-size", SIZE)
    assert proc.returncode == 0, proc.stderr
    assert f"at 1x{SIZE}x{SIZE}" in proc.stdout
    assert f"raw sample {SIZE * SIZE:,} bytes" in proc.stdout
    # features.0 sends 32 x 16 x 16 fp32 values per sample: 32 times the 1-byte grey image
    line = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["features.0"])
    assert line.split()[1] == "32x16x16" and line.split()[-1] == "32.00x"


# --- early exits -------------------------------------------------------------------------


def test_token_early_exit_of_a_vision_transformer():
    torch.manual_seed(0)
    net = build_model("vit_b_16", "cifar10", input_size=SIZE).eval()
    point = "encoder.layers.encoder_layer_5"
    feature = net.feature(point)
    assert feature.kind == "tokens" and feature.shape == (5, 768)  # 2 x 2 patches and the class token
    parts = split(net, point)
    head = parts.early_exit.eval()
    # LayerNorm(768): 2 x 768; Linear(768, 10): 768 x 10 + 10
    assert sum(p.numel() for p in head.parameters()) == early_exit_param_count(feature, CLASSES) == 9226
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        tokens = parts.edge(x)
        logits = head(tokens)
        assert tokens.shape == (2, 5, 768) and logits.shape == (2, CLASSES)
        assert torch.allclose(head(tokens.flip(1)), logits, atol=1e-5)  # a mean over the tokens


def test_vector_early_exit_after_the_global_pool():
    net = build_model("mobilenet_v2", "cifar10", input_size=SIZE)
    feature = net.feature("classifier.0")
    assert feature.kind == "vector" and feature.shape == (1280,)
    head = split(net, "classifier.0").early_exit
    assert sum(p.numel() for p in head.parameters()) == early_exit_param_count(feature, CLASSES) == 1280 * 10 + 10


# --- the paper's models ------------------------------------------------------------------


def test_paper_models_keep_their_block_names():
    vgg = build_model("vgg16", "cifar10")
    assert vgg.source == "paper" and vgg.split_points == [f"stage{i}" for i in range(1, 6)]
    resnet = build_model("resnet18", "cifar10", width=0.125)
    assert resnet.split_points == ["stem"] + [f"layer{stage}_{block}" for stage in range(1, 5) for block in range(2)]
    assert resnet.block_names[-1] == "head"
    assert sum(p.numel() for p in build_model("resnet18", "cifar10").parameters()) == 11_173_962
