"""Registry-wide model tests: every model x input variant x separation point."""
import pytest
import torch
from torch import nn

from simulator.data.specs import DATASETS
from simulator.models import PAPER_MODELS as MODELS
from simulator.models import build_model, early_exit_param_count, split

WIDTH = 0.125
CASES = [(arch, dataset) for arch in MODELS for dataset in DATASETS]


@pytest.mark.parametrize("arch,dataset", CASES)
def test_split_composes_to_the_whole_model(arch, dataset):
    torch.manual_seed(0)
    model = build_model(arch, dataset, WIDTH).eval()
    spec = DATASETS[dataset]
    x = torch.randn(3, *spec.input_shape)
    with torch.no_grad():
        whole = model(x)
        assert whole.shape == (3, spec.num_classes)
        assert torch.isfinite(whole).all()
        for point in model.split_points:
            parts = split(model, point)
            features = parts.edge(x)
            assert tuple(features.shape[1:]) == model.feature(point).shape
            assert torch.equal(parts.cloud(features), whole), point
            logits = parts.early_exit.eval()(features)
            assert logits.shape == (3, spec.num_classes)
            assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch,dataset", CASES)
def test_early_exit_parameter_count_matches_formula(arch, dataset):
    model = build_model(arch, dataset, WIDTH)
    for point in model.split_points:
        head = split(model, point).early_exit
        counted = sum(p.numel() for p in head.parameters())
        assert counted == early_exit_param_count(model.feature(point), model.num_classes, WIDTH)


@pytest.mark.parametrize("arch", MODELS)
def test_gradients_reach_exactly_the_parts_each_loss_trains(arch):
    """Hierarchical: exit loss trains edge + exit only; the final loss on detached features
    trains the cloud only. Split learning: the final loss trains edge + cloud, not the exit."""
    torch.manual_seed(0)
    model = build_model(arch, "cifar10", WIDTH).train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for point in model.split_points:
        parts = split(model, point)
        groups = {name: list(module.parameters()) for name, module in parts.modules().items()}

        def grads_after(loss_of) -> dict[str, bool]:
            for params in groups.values():
                for p in params:
                    p.grad = None
            loss_of().backward()
            return {name: [p.grad is not None and p.grad.abs().sum() > 0 for p in params]
                    for name, params in groups.items()}

        features = lambda: parts.edge(x)  # noqa: E731
        local = grads_after(lambda: nn.functional.cross_entropy(parts.early_exit(features()), y))
        assert all(local["edge"]) and all(local["early_exit"]) and not any(local["cloud"])
        cloud = grads_after(lambda: nn.functional.cross_entropy(parts.cloud(features().detach()), y))
        assert all(cloud["cloud"]) and not any(cloud["edge"]) and not any(cloud["early_exit"])
        joint = grads_after(lambda: nn.functional.cross_entropy(parts.cloud(features()), y))
        assert all(joint["edge"]) and all(joint["cloud"]) and not any(joint["early_exit"])


def test_split_points_are_the_documented_block_names():
    assert build_model("vgg16", "cifar10", WIDTH).split_points == [f"stage{i}" for i in range(1, 6)]
    assert build_model("resnet18", "cifar10", WIDTH).split_points == (
        ["stem"] + [f"layer{l}_{b}" for l in range(1, 5) for b in range(2)])


def test_full_width_parameter_counts():
    # CIFAR-style ResNet-18 has 11,173,962 parameters (He et al.; kuangliu/pytorch-cifar).
    assert sum(p.numel() for p in build_model("resnet18", "cifar10").parameters()) == 11_173_962
    vgg = build_model("vgg16", "cifar100")
    assert vgg.num_classes == 100 and vgg(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


def test_width_multiplier_shrinks_channels():
    narrow, full = build_model("vgg16", "cifar10", 0.25), build_model("vgg16", "cifar10", 1.0)
    assert narrow.feature("stage1").channels == 16 and full.feature("stage1").channels == 64


def test_bad_split_point_names_the_valid_ones():
    from simulator.core.errors import UserError

    with pytest.raises(UserError, match="valid: stage1, stage2"):
        split(build_model("vgg16", "cifar10", WIDTH), "layer1_0")
