"""The profiler, the profile file format and roofline derivation."""
import json
from dataclasses import replace

import pytest
import torch
from conftest import ROOT, assert_user_error, run_process
from hand_profiles import Block, Exit, hand_profile
from torch.utils.flop_counter import FlopCounterMode

from simulator.models import build_model
from simulator.profiling.derive import (
    DEFAULT_DATASHEETS,
    Datasheet,
    derive_profile,
    load_datasheets,
)
from simulator.profiling.measure import measure_profile
from simulator.profiling.schema import SCHEMA_VERSION, Profile, check_profile

WIDTH, BATCH = 0.125, 4


@pytest.fixture(scope="module", params=["vgg16", "resnet18"])
def measured(request) -> Profile:
    return measure_profile(request.param, "cifar10", BATCH, "cpu", threads=1, repeats=2, warmup=1, width=WIDTH,
                           progress=False)


def test_block_flops_sum_to_the_whole_model(measured):
    torch.manual_seed(0)
    model = build_model(measured.model, "cifar10", WIDTH).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(BATCH, 3, 32, 32))
    assert sum(layer.fwd_flops for layer in measured.layers) == counter.get_total_flops()


def test_backward_is_about_twice_forward_past_the_first_block(measured):
    for layer in measured.layers[1:]:
        assert 1.9 <= layer.bwd_flops / layer.fwd_flops <= 2.1, layer
    # The first block needs no gradient for its input (the data), so its backward is cheaper.
    assert measured.layers[0].bwd_flops < 2 * measured.layers[0].fwd_flops


def test_profile_records_shapes_bytes_times_and_exits(measured):
    model = build_model(measured.model, "cifar10", WIDTH)
    assert measured.layer_names == model.block_names
    assert [e.after for e in measured.exits] == model.split_points
    for layer, info in zip(measured.layers, model.feature_info):
        assert layer.out_shape == [BATCH, *info.shape]
        assert layer.out_bytes == 4 * BATCH * torch.Size(info.shape).numel()
        assert layer.param_bytes == 4 * sum(p.numel() for p in model.block(layer.name).parameters())
        assert layer.fwd_ms > 0 and layer.bwd_ms > 0 and layer.step_ms >= 0
    assert measured.raw_sample_bytes == 3 * 32 * 32
    assert measured.device.kind == "cpu" and measured.device.threads == 1
    assert measured.source == "measured" and measured.schema_version == SCHEMA_VERSION
    assert measured.optimizer_step_ms == pytest.approx(sum(layer.step_ms for layer in measured.layers))


def test_profile_json_round_trips(measured, tmp_path):
    path = tmp_path / "p.json"
    measured.save(path)
    assert Profile.load(path) == measured
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def two_block_profile() -> Profile:
    """One 2-layer model, batch 2, input 1x2x2 (2 x 4 fp32 values = 32 bytes per batch)."""
    blocks = [Block("a", 1.0, 2.0, 0.1, out_numel=4, param_bytes=100, fwd_flops=1000, bwd_flops=2000,
                    saved_bytes=48, bwd_peak_bytes=150),
              Block("head", 1.0, 2.0, 0.1, out_numel=2, param_bytes=40, fwd_flops=10, bwd_flops=20,
                    saved_bytes=32, bwd_peak_bytes=30)]
    exits = [Exit("a", 1.0, 2.0, 0.1, param_bytes=20, fwd_flops=50, bwd_flops=100, saved_bytes=16, bwd_peak_bytes=36)]
    return hand_profile(blocks, exits, batch_size=2, input_shape=(1, 2, 2), raw_sample_bytes=4, label_bytes=1,
                        prep_ms=0.0, model="vgg16", dataset="cifar10", source="measured", threads=1)


def test_derivation_reproduces_its_roofline_arithmetic():
    sheet = Datasheet(key="toy", name="Toy", kind="cuda", peak_flops_per_s=1e6, memory_bandwidth_bytes_per_s=1e4,
                      memory_mib=1, compute_efficiency=0.5, memory_efficiency=0.5, overhead_ms_per_kernel_group=0.25,
                      source="hand")
    derived = derive_profile(two_block_profile(), sheet, "hand.json")
    a, head = derived.layers
    # layer a: fwd compute 1000/(1e6*0.5) = 2 ms; memory (32+32+100)/(1e4*0.5) = 32.8 ms; + 0.25
    assert a.fwd_ms == pytest.approx(33.05)
    # bwd compute 2000/5e5 = 4 ms; memory (2*(32+32)+2*100)/5e3 = 65.6 ms
    assert a.bwd_ms == pytest.approx(65.85)
    assert a.step_ms == pytest.approx(5 * 100 / 5e3 * 1e3 + 0.25)  # 100.25 ms
    # head: in 32, out 16, params 40: fwd memory 88/5e3 = 17.6 ms; compute 0.02 ms
    assert head.fwd_ms == pytest.approx(17.85)
    # exit after a: in 32, out = logits 16, params 20: fwd memory 68/5e3 = 13.6 ms
    assert derived.exits[0].fwd_ms == pytest.approx(13.85)
    # input prep: raw 2*4 = 8 bytes + fp32 copy 32 bytes: 40/5e3 = 8 ms
    assert derived.input_prep_ms == pytest.approx(8.25)
    assert derived.source == "derived" and derived.device.kind == "cuda" and derived.device.name == "Toy"
    assert derived.layers[0].fwd_flops == 1000 and derived.derivation["datasheet"]["peak_flops_per_s"] == 1e6
    assert derived.optimizer_step_ms == pytest.approx(a.step_ms + head.step_ms)


TOY_SHEET = Datasheet(key="toy", name="Toy", kind="cuda", peak_flops_per_s=1e6, memory_bandwidth_bytes_per_s=1e4,
                      memory_mib=1, compute_efficiency=0.5, memory_efficiency=0.5, overhead_ms_per_kernel_group=0.25,
                      source="hand")


def test_derived_at_the_measured_batch_size_is_the_plain_derivation():
    plain = derive_profile(two_block_profile(), TOY_SHEET, "hand.json")
    same = derive_profile(two_block_profile(), TOY_SHEET, "hand.json", batch_size=2)
    assert replace(same, created="") == replace(plain, created="")
    assert "batch_size_from" not in same.derivation


def test_derived_at_twice_the_batch_doubles_flops_and_activations_not_parameters(tmp_path):
    derived = derive_profile(two_block_profile(), TOY_SHEET, "hand.json", batch_size=4)
    a, head = derived.layers
    assert derived.batch_size == 4 and derived.derivation["batch_size_from"] == 2
    assert (a.fwd_flops, a.bwd_flops, a.out_shape, a.out_bytes, a.param_bytes) == (2000, 4000, [4, 4], 64, 100)
    assert (head.fwd_flops, head.bwd_flops, head.out_shape, head.out_bytes, head.param_bytes) == (20, 40, [4, 2], 32, 40)
    assert (a.saved_bytes, head.saved_bytes) == (96, 64)
    # backward rise: the weight gradients (min(rise, param_bytes)) stay, the rest doubles;
    # the head's rise of 30 is below its 40 parameter bytes, so all of it stays
    assert a.bwd_peak_bytes == 100 + 2 * 50 and head.bwd_peak_bytes == 30
    exit_a = derived.exits[0]
    assert (exit_a.fwd_flops, exit_a.bwd_flops, exit_a.param_bytes) == (100, 200, 20)
    assert (exit_a.saved_bytes, exit_a.bwd_peak_bytes) == (32, 20 + 2 * 16)
    # times from the doubled bytes: layer a forward moves in 64 + out 64 + params 100 = 228 bytes,
    # 228 / (1e4 * 0.5) = 45.6 ms (compute 2000 / 5e5 = 4 ms) + 0.25
    assert a.fwd_ms == pytest.approx(45.85)
    # input prep: raw 4 x 4 = 16 bytes + fp32 copy 64 bytes = 80 / 5e3 = 16 ms + 0.25
    assert derived.input_prep_ms == pytest.approx(16.25)
    derived.save(tmp_path / "d.json")
    assert Profile.load(tmp_path / "d.json") == derived


def test_cli_derives_a_shipped_profile_at_another_batch_size(cli, tmp_path):
    measured = ROOT / "profiles" / "epyc-2t_resnet18_tiny-imagenet_b32.json"
    out = tmp_path / "b128.json"
    proc = cli("profile", "--derive", "raspberry-pi-5", "--from", measured, "--batch-size", "128", "--out", out)
    assert proc.returncode == 0, proc.stderr
    source, derived = Profile.load(measured), Profile.load(out)
    check_profile(derived, str(out))
    assert derived.batch_size == 128 and derived.derivation["batch_size_from"] == 32
    for old, new in zip(source.layers + source.exits, derived.layers + derived.exits):
        assert (new.fwd_flops, new.bwd_flops, new.saved_bytes) == (4 * old.fwd_flops, 4 * old.bwd_flops,
                                                                   4 * old.saved_bytes)
        assert new.param_bytes == old.param_bytes
        assert old.bwd_peak_bytes <= new.bwd_peak_bytes <= 4 * old.bwd_peak_bytes
    assert [layer.out_bytes for layer in derived.layers] == [4 * layer.out_bytes for layer in source.layers]


@pytest.mark.parametrize("size,fragment", [("0", ">= 1, got 0"), ("-32", ">= 1, got -32"),
                                           ("65537", "over the limit of 65,536")])
def test_bad_derive_batch_size_fails_in_one_line(cli, tmp_path, size, fragment):
    out = tmp_path / "out.json"
    measured = ROOT / "profiles" / "epyc-2t_vgg16_cifar10_b32.json"
    proc = cli("profile", "--derive", "a100", "--from", measured, "--batch-size", size, "--out", out)
    assert_user_error(proc, "--batch-size", fragment)
    assert not out.exists()


def test_shipped_datasheets_load_and_cite_sources():
    sheets = load_datasheets(DEFAULT_DATASHEETS)
    assert {"jetson-orin-nano", "raspberry-pi-4", "a100", "jetson-nano", "jetson-xavier-nx", "jetson-agx-orin",
            "phone-soc", "raspberry-pi-5", "v100", "h100"} <= set(sheets)
    assert all(sheet.source and sheet.peak_flops_per_s > 0 for sheet in sheets.values())


def test_cli_profile_then_derive(cli, tmp_path):
    measured, derived = tmp_path / "m.json", tmp_path / "d.json"
    proc = cli("profile", "--model", "resnet18", "--dataset", "fashion-mnist", "--batch-size", "2", "--width",
               "0.0625", "--repeats", "1", "--warmup", "0", "--threads", "1", "--no-progress", "--out", measured)
    assert proc.returncode == 0, proc.stderr
    proc = cli("profile", "--derive", "raspberry-pi-4", "--from", measured, "--out", derived)
    assert proc.returncode == 0, proc.stderr
    profile = Profile.load(derived)
    assert profile.source == "derived" and profile.dataset == "fashion-mnist"
    assert profile.derivation["from_profile"] == str(measured)


@pytest.mark.parametrize("args,fragments", [
    (["--model", "vgg99", "--dataset", "cifar10"], ["--model", "vgg16", "resnet18"]),
    (["--model", "vgg16", "--dataset", "imagenet"], ["--dataset", "cifar10", "tiny-imagenet"]),
    (["--model", "vgg16", "--dataset", "cifar10", "--device", "tpu"], ["tpu", "cpu, cuda"]),
    (["--derive", "a9000", "--from", "simulator/profiling/datasheets.json"], ["a9000", "jetson-orin-nano"]),
])
def test_bad_profile_arguments_fail_in_one_line(cli, tmp_path, args, fragments):
    out = tmp_path / "out.json"
    assert_user_error(cli("profile", *args, "--out", out), *fragments)
    assert not out.exists()


def test_cuda_where_there_is_none(cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out.json"
    assert_user_error(cli("profile", "--model", "vgg16", "--dataset", "cifar10", "--device", "cuda", "--out", out),
                      "cuda", "valid here: cpu")
    assert not out.exists()


def test_unwritable_output_fails_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_user_error(run_process("profile", "--model", "vgg16", "--dataset", "cifar10", "--out", blocker / "x.json"),
                      "cannot write")


def test_profile_file_errors_name_the_key(tmp_path):
    from simulator.core.errors import UserError

    data = two_block_profile().to_dict()
    data["layers"][1]["fwd_ms"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"bad.json: layers\[1\].fwd_ms must be a non-negative number"):
        Profile.load(path)
    data = two_block_profile().to_dict()
    data["layers"][0]["fwd_msec"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"unknown key layers\[0\].fwd_msec"):
        Profile.load(path)


SHIPPED_PROFILES = sorted((ROOT / "profiles").glob("*.json"))


def test_profiles_are_shipped():
    assert len(SHIPPED_PROFILES) >= 25


@pytest.mark.parametrize("path", SHIPPED_PROFILES, ids=[p.stem for p in SHIPPED_PROFILES])
def test_every_shipped_profile_loads_and_matches_its_model(path):
    profile = Profile.load(path)
    model = build_model(profile.model, profile.dataset, 0.0625)
    assert profile.layer_names == model.block_names
    assert [head.after for head in profile.exits] == model.split_points
    assert profile.source in ("measured", "derived")
    assert (profile.derivation is not None) == (profile.source == "derived")


def test_a_derived_profile_round_trips_its_free_form_derivation(tmp_path):
    sheet = Datasheet(key="toy", name="Toy", kind="cpu", peak_flops_per_s=1e9, memory_bandwidth_bytes_per_s=1e9,
                      memory_mib=1, compute_efficiency=0.5, memory_efficiency=0.5, overhead_ms_per_kernel_group=0.0,
                      source="hand")
    derived = derive_profile(two_block_profile(), sheet, "hand.json")
    derived.save(tmp_path / "d.json")
    loaded = Profile.load(tmp_path / "d.json")
    assert loaded == derived and loaded.derivation["datasheet"]["key"] == "toy"


SHEET = {"name": "Toy", "kind": "cpu", "peak_flops_per_s": 1e9, "memory_bandwidth_bytes_per_s": 1e9, "memory_mib": 64,
         "compute_efficiency": 0.5, "memory_efficiency": 0.5, "overhead_ms_per_kernel_group": 0.01, "source": "hand"}



def one_device(entry: dict) -> str:
    """A datasheet file holding `entry` as device "toy"."""
    return json.dumps({"devices": {"toy": entry}})


BAD_DATASHEETS = {
    "zero efficiency": (one_device({**SHEET, "compute_efficiency": 0}),
                        ["devices.toy.compute_efficiency", "(0, 1]"]),
    "NaN peak": (one_device({**SHEET, "peak_flops_per_s": float("nan")}),
                 ["devices.toy.peak_flops_per_s", "finite"]),
    "a tiny peak": (one_device({**SHEET, "peak_flops_per_s": 1e-300}),
                    ["devices.toy.peak_flops_per_s", "at least 1 per second"]),
    "old key name": (one_device({**SHEET, "memory_mb": 1}),
                     ["unknown key devices.toy.memory_mb", "memory_mib"]),
    "missing key": (one_device({k: v for k, v in SHEET.items() if k != "source"}),
                    ["missing key devices.toy.source"]),
    "unknown kind": (one_device({**SHEET, "kind": "tpu"}), ["devices.toy.kind", "cuda"]),
    "a key twice": ('{"devices": {}, "devices": {}}', ["'devices' is given twice"]),
    "a list": ("[]", ["top level must be a mapping"]),
    "not UTF-8": (b"\xff\xfe{}", ["not UTF-8 text"]),
}


@pytest.mark.parametrize("case", BAD_DATASHEETS, ids=list(BAD_DATASHEETS))
def test_bad_datasheets_fail_in_one_line_and_write_nothing(cli, tmp_path, case):
    content, fragments = BAD_DATASHEETS[case]
    sheets = tmp_path / "sheets.json"
    sheets.write_bytes(content if isinstance(content, bytes) else content.encode())
    measured = ROOT / "profiles" / "epyc-2t_vgg16_cifar10_b32.json"
    out = tmp_path / "out.json"
    proc = cli("profile", "--derive", "toy", "--from", measured, "--datasheets", sheets, "--out", out)
    assert_user_error(proc, str(sheets), *fragments)
    assert not out.exists()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_a_profile(tmp_path, token):
    from simulator.core.errors import UserError

    text = json.dumps(two_block_profile().to_dict()).replace('"input_prep_ms": 0.0', f'"input_prep_ms": {token}')
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(UserError, match=r"p.json: input_prep_ms must be a finite number"):
        Profile.load(path)
