"""Dataset loaders on tiny files in the real on-disk formats, subsets, augmentation and batching."""
import gzip
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FASHION_MNIST, needs_fashion_mnist
from PIL import Image

import simulator.data.provision as provision
import simulator.data.readers as dl
from simulator.core.errors import UserError
from simulator.data.batching import PREPROCESS, BatchLoader, get_preprocess, subset
from simulator.data.readers import ImageSet, load_dataset

RNG = np.random.default_rng(0)


# ---------- writers for the published formats ----------

def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """IDX: big-endian uint32 magic, one big-endian uint32 per dimension, then the uint8 data."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    body = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(body)
    else:
        path.write_bytes(body)


def write_fashion(folder: Path, prefix: str, n: int, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, 2051)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, 2049)
    return images, labels


def write_cifar_batch(path: Path, n: int, label_key: bytes, classes: int) -> tuple[np.ndarray, list[int]]:
    """A batch dict with bytes keys, as Krizhevsky's (Python 2) pickles hold them."""
    data, labels = RNG.integers(0, 256, (n, 3072), dtype=np.uint8), RNG.integers(0, classes, n).tolist()
    batch = {b"batch_label": b"testing batch 1 of 1", label_key: labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [label // 5 for label in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)
    return data, labels


WNIDS = ["n01443537", "n01629819", "n01641577"]
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]  # one flat colour per class: JPEG keeps it within a few levels


def write_tiny_imagenet(root: Path, per_class: int = 2) -> Path:
    """tiny-imagenet-200/ with wnids.txt, train/<wnid>/images/*.JPEG, val/images + val_annotations.txt.
    The last train image of the last class is grayscale (mode L), as some real ones are."""
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    for k, (wnid, colour) in enumerate(zip(WNIDS, COLOURS)):
        (folder / "train" / wnid / "images").mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (64, 64), colour)
            if k == len(WNIDS) - 1 and i == per_class - 1:
                image = Image.new("L", (64, 64), 90)
            image.save(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", quality=95)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for i, k in enumerate([2, 0, 1]):
        Image.new("RGB", (64, 64), COLOURS[k]).save(folder / "val" / "images" / f"val_{i}.JPEG", quality=95)
        lines.append(f"val_{i}.JPEG\t{WNIDS[k]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the user's data or cache, or the machine's Debian data unless it asks."""
    monkeypatch.delenv("SIMULATOR_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(provision, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.chdir(tmp_path)


def one_line_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ---------- readers ----------

def test_fashion_mnist_reads_gz_and_uncompressed_idx_exactly(tmp_path, monkeypatch):
    train_images, train_labels = write_fashion(tmp_path / "fashion-mnist", "train", 7)
    test_images, test_labels = write_fashion(tmp_path / "fashion-mnist", "t10k", 5, gz=False)
    train, test = load_dataset("fashion-mnist", "train", tmp_path), load_dataset("fashion-mnist", "test", tmp_path)
    assert train.images.shape == (7, 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), train_images)
    assert train.labels.tolist() == train_labels.tolist() and train.labels.dtype == torch.int64
    assert np.array_equal(test.images[:, 0].numpy(), test_images) and test.labels.tolist() == test_labels.tolist()
    assert (train.name, train.split, train.source) == ("fashion-mnist", "train", tmp_path / "fashion-mnist")
    # root may also be the folder itself, and $SIMULATOR_DATA is the default root
    assert torch.equal(load_dataset("fashion-mnist", "train", tmp_path / "fashion-mnist").images, train.images)
    monkeypatch.setenv("SIMULATOR_DATA", str(tmp_path))
    assert torch.equal(load_dataset("fashion-mnist", "train").labels, train.labels)


@pytest.mark.parametrize("damage, fragment", [
    ("magic", "magic number 2051, expected 2049"),
    ("truncate", "truncated"),
    ("not-gzip", "cannot read"),
])
def test_corrupt_idx_is_a_user_error_naming_the_file(tmp_path, damage, fragment):
    folder = tmp_path / "fashion-mnist"
    write_fashion(folder, "train", 4)
    labels = folder / "train-labels-idx1-ubyte.gz"
    if damage == "magic":
        write_idx(labels, np.zeros(4, np.uint8), 2051)
    elif damage == "truncate":
        write_idx(labels, np.zeros(3, np.uint8), 2049)
        with gzip.open(labels, "rb") as handle:
            body = bytearray(handle.read())
        body[4:8] = (4).to_bytes(4, "big")  # header claims 4 labels, 3 follow
        with gzip.open(labels, "wb") as handle:
            handle.write(bytes(body))
    else:
        labels.write_bytes(b"this is not gzip data")
    with pytest.raises(UserError) as excinfo:
        load_dataset("fashion-mnist", "train", tmp_path)
    one_line_error(excinfo, str(labels), fragment)


def test_cifar10_pickles_read_back_exactly_in_rgb_plane_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    written = [write_cifar_batch(folder / f"data_batch_{i}", 3, b"labels", 10) for i in range(1, 6)]
    test_data, test_labels = write_cifar_batch(folder / "test_batch", 4, b"labels", 10)
    train = load_dataset("cifar10", "train", tmp_path)
    data = np.concatenate([d for d, _ in written])
    assert train.images.shape == (15, 3, 32, 32)
    assert train.labels.tolist() == sum((labels for _, labels in written), [])
    # each row is 1024 red, then 1024 green, then 1024 blue bytes, each plane row-major
    assert train.images[4, 1, 2, 3].item() == data[4, 1024 + 2 * 32 + 3]
    assert train.images[7, 2, 31, 0].item() == data[7, 2048 + 31 * 32]
    assert np.array_equal(train.images.numpy().reshape(15, -1), data)
    test = load_dataset("cifar10", "test", tmp_path)
    assert np.array_equal(test.images.numpy().reshape(4, -1), test_data) and test.labels.tolist() == test_labels


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    data, labels = write_cifar_batch(folder / "train", 6, b"fine_labels", 100)
    write_cifar_batch(folder / "test", 2, b"fine_labels", 100)
    train = load_dataset("cifar100", "train", tmp_path)
    assert train.labels.tolist() == labels and np.array_equal(train.images.numpy().reshape(6, -1), data)
    assert len(load_dataset("cifar100", "test", tmp_path)) == 2


def test_cifar_batch_without_its_label_key_is_a_user_error(tmp_path):
    write_cifar_batch(tmp_path / "cifar-100-python" / "test", 2, b"labels", 10)  # CIFAR-10 keys in CIFAR-100
    with pytest.raises(UserError) as excinfo:
        load_dataset("cifar100", "test", tmp_path)
    one_line_error(excinfo, str(tmp_path / "cifar-100-python" / "test"), "fine_labels")


def test_tiny_imagenet_decodes_jpegs_in_wnid_order_and_val_as_test(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = load_dataset("tiny-imagenet", "train", tmp_path)
    assert train.images.shape == (6, 3, 64, 64) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    for i in range(5):
        mean_rgb = train.images[i].float().mean(dim=(1, 2))
        assert torch.allclose(mean_rgb, torch.tensor(COLOURS[train.labels[i]], dtype=torch.float32), atol=6)
    grey = train.images[5].float()
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2]) and abs(grey.mean() - 90) < 3
    test = load_dataset("tiny-imagenet", "test", tmp_path)
    assert test.labels.tolist() == [2, 0, 1] and test.split == "test"
    assert abs(test.images[0, 2].float().mean() - 200) < 6  # val_0 is blue


def test_tiny_imagenet_cache_is_reused_and_invalidated_by_a_touched_file(tmp_path, monkeypatch):
    folder = write_tiny_imagenet(tmp_path)
    decoded = []
    real_decode = dl._decode_jpegs
    monkeypatch.setattr(dl, "_decode_jpegs", lambda files, desc: decoded.append(len(files)) or real_decode(files, desc))
    first = load_dataset("tiny-imagenet", "train", tmp_path)
    caches = list(tmp_path.glob("tiny-imagenet-200.train.*.pt"))
    assert decoded == [6] and len(caches) == 1
    second = load_dataset("tiny-imagenet", "train", tmp_path)
    assert decoded == [6] and torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    touched = folder / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_dataset("tiny-imagenet", "train", tmp_path)
    assert decoded == [6, 6]
    new_caches = list(tmp_path.glob("tiny-imagenet-200.train.*.pt"))
    assert len(new_caches) == 1 and new_caches != caches  # the stale cache was replaced, not kept
    load_dataset("tiny-imagenet", "test", tmp_path)  # a different split has its own cache
    assert decoded == [6, 6, 3] and len(list(tmp_path.glob("tiny-imagenet-200.test.*.pt"))) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_tiny_imagenet_cache_falls_back_to_the_user_cache_when_the_parent_is_not_writable(tmp_path, monkeypatch):
    write_tiny_imagenet(tmp_path)
    real_mkstemp = tempfile.mkstemp

    def mkstemp(dir, **kwargs):
        if Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    first = load_dataset("tiny-imagenet", "test", tmp_path)
    assert not list(tmp_path.glob("*.pt"))
    assert len(list((tmp_path / "user-cache" / "simulator" / "datasets").glob("tiny-imagenet-200.test.*.pt"))) == 1
    monkeypatch.setattr(dl, "_decode_jpegs", lambda files, desc: pytest.fail("cache not used"))
    assert torch.equal(load_dataset("tiny-imagenet", "test", tmp_path).images, first.images)


@pytest.mark.parametrize("name, folder, fragments", [
    ("fashion-mnist", "fashion-mnist", ["apt-get install dataset-fashion-mnist", "no-debian"]),
    ("cifar10", "cifar-10-batches-py", ["download: never", "cifar-10-python.tar.gz"]),
    ("cifar100", "cifar-100-python", ["download: never", "cifar-100-python.tar.gz"]),
    ("tiny-imagenet", "tiny-imagenet-200", ["http://cs231n.stanford.edu/tiny-imagenet-200.zip"]),
])
def test_missing_dataset_error_names_every_place_searched_and_how_to_get_it(tmp_path, name, folder, fragments):
    with pytest.raises(UserError) as excinfo:
        load_dataset(name, "train")
    one_line_error(excinfo, str(tmp_path / "data" / folder), "SIMULATOR_DATA", *fragments)
    with pytest.raises(UserError) as excinfo:
        load_dataset(name, "test", tmp_path / "mine")
    one_line_error(excinfo, str(tmp_path / "mine" / folder) + ",", str(tmp_path / "mine") + ";", *fragments[:1])


def test_unknown_dataset_or_split_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="'mnist'.*valid: fashion-mnist"):
        load_dataset("mnist", "train")
    with pytest.raises(UserError, match="'val'.*valid: train, test"):
        load_dataset("cifar10", "val")


@needs_fashion_mnist
def test_real_debian_fashion_mnist_has_the_published_sizes_and_statistics(monkeypatch):
    monkeypatch.setattr(provision, "DEBIAN_FASHION_MNIST", FASHION_MNIST)
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    assert train.source == FASHION_MNIST
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    x = get_preprocess("fashion-mnist").normalize(train.images)
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01  # the published mean/std fit


# ---------- subsets ----------

def synthetic(name: str, labels: list[int], shape=(3, 8, 8)) -> ImageSet:
    """Image i holds i in its first two pixels (i // 256, i % 256), so a picked image names its index."""
    n = len(labels)
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    images.view(n, -1)[:, 0] = torch.arange(n) // 256
    images.view(n, -1)[:, 1] = torch.arange(n) % 256
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), name, "train", Path("/synthetic"))


def index_of(images: torch.Tensor) -> list[int]:
    flat = images.reshape(len(images), -1).long()
    return (flat[:, 0] * 256 + flat[:, 1]).tolist()


def test_subset_is_stratified_deterministic_and_keeps_pixels_with_labels():
    labels = [0] * 50 + [1] * 3 + [2] * 20 + [3] * 27
    full = synthetic("cifar10", labels)
    picked = subset(full, 40, seed=5)
    counts = torch.bincount(picked.labels, minlength=4).tolist()
    # class 1 gives its 3; the other 37 split 12/12/12 plus one extra to a random class
    assert counts[1] == 3 and sorted(counts[i] for i in (0, 2, 3)) == [12, 12, 13]
    chosen = index_of(picked.images)
    assert chosen == sorted(chosen) and len(set(chosen)) == 40  # original order, no repeats
    assert [labels[i] for i in chosen] == picked.labels.tolist()
    assert index_of(subset(full, 40, seed=5).images) == chosen
    assert index_of(subset(full, 40, seed=6).images) != chosen
    assert torch.bincount(subset(full, 8, seed=0).labels).tolist() == [2, 2, 2, 2]
    assert len(subset(full, 100, seed=0)) == 100


def test_subset_larger_than_the_set_is_a_user_error():
    with pytest.raises(UserError, match="cannot take 11 samples from cifar10 train .* which has 10"):
        subset(synthetic("cifar10", [0, 1] * 5), 11, seed=0)


# ---------- preprocessing ----------

def reference_crop_flip(image: torch.Tensor, dy: int, dx: int, flip: bool, pad: int) -> torch.Tensor:
    _, h, w = image.shape
    out = F.pad(image, (pad,) * 4)[:, dy:dy + h, dx:dx + w]
    return out.flip(-1) if flip else out


def test_crop_and_flip_match_a_per_image_reference():
    images = synthetic("cifar10", list(range(6)), shape=(3, 32, 32)).images
    offsets = torch.tensor([[0, 0], [4, 4], [8, 8], [1, 7], [8, 0], [3, 3]])
    flips = torch.tensor([False, False, True, True, False, True])
    out = PREPROCESS["cifar10"].apply(images, offsets, flips)
    for k in range(6):
        expected = reference_crop_flip(images[k], *offsets[k].tolist(), bool(flips[k]), pad=4)
        assert torch.equal(out[k], expected), k
    assert torch.equal(out[1], images[1])  # centre offset, no flip: unchanged
    assert out[0, :, :4, :].eq(0).all() and out[0, :, :, :4].eq(0).all()  # zero (black) padding shows


@pytest.mark.parametrize("name", list(PREPROCESS))
def test_normalisation_maps_the_dataset_mean_to_zero_and_one_std_to_one(name):
    pre = PREPROCESS[name]
    mean, std = torch.tensor(pre.mean).view(-1, 1, 1), torch.tensor(pre.std).view(-1, 1, 1)
    at_mean = (mean * 255).expand(len(pre.mean), 4, 4)
    x = pre.normalize(torch.stack([at_mean.round(), (at_mean + std * 255).round()]).to(torch.uint8))
    assert x.dtype == torch.float32
    assert x[0].abs().max() < 0.5 / 255 / min(pre.std) + 1e-6
    assert (x[1] - 1).abs().max() < 1 / 255 / min(pre.std) + 1e-6


def test_fashion_mnist_crops_with_2px_padding_and_never_flips():
    pre = get_preprocess("fashion-mnist")
    offsets, flips = pre.draw(1000, torch.Generator().manual_seed(0))
    assert not flips.any() and offsets.min() == 0 and offsets.max() == 4
    assert PREPROCESS["tiny-imagenet"].crop_padding_px == 8 and PREPROCESS["cifar100"].flip


# ---------- batching ----------

def epoch_batches(loader: BatchLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def test_train_loader_is_deterministic_per_seed_and_reshuffles_every_epoch():
    data = synthetic("cifar10", list(range(50)), shape=(3, 32, 32))
    a, b, c = (BatchLoader(data, 16, train=True, seed=s) for s in (7, 7, 8))
    a0, a1, b0, b1, c0 = epoch_batches(a), epoch_batches(a), epoch_batches(b), epoch_batches(b), epoch_batches(c)
    assert len(a) == 4 and [len(y) for _, y in a0] == [16, 16, 16, 2]
    for (xa, ya), (xb, yb) in zip(a0 + a1, b0 + b1):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    order = lambda batches: torch.cat([y for _, y in batches]).tolist()  # noqa: E731
    assert sorted(order(a0)) == list(range(50)) and sorted(order(a1)) == list(range(50))  # each sample once
    assert order(a0) != order(a1) and order(a0) != order(c0)
    assert a.epoch == 2


def test_train_batches_are_crops_and_flips_of_the_right_images():
    data = synthetic("cifar10", list(range(12)), shape=(3, 8, 8))
    pre = PREPROCESS["cifar10"]
    x, y = next(iter(BatchLoader(data, 12, train=True, seed=3)))
    assert x.shape == (12, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    scale, shift = pre.affine()
    pixels = ((x - shift) / scale).round().to(torch.uint8)
    flipped = 0
    for k in range(12):
        source = data.images[y[k]]
        matches = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                   if torch.equal(reference_crop_flip(source, dy, dx, f, 4), pixels[k])]
        assert matches, k
        flipped += all(f for _, _, f in matches)
    assert 0 < flipped < 12  # some flipped, some not


def test_test_loader_is_ordered_and_only_normalised():
    data = synthetic("tiny-imagenet", [3, 1, 4, 1, 5, 9, 2], shape=(3, 64, 64))
    loader = BatchLoader(data, 3, train=False, seed=0)
    batches = epoch_batches(loader)
    assert len(loader) == 3 and torch.equal(torch.cat([y for _, y in batches]), data.labels)
    assert torch.equal(torch.cat([x for x, _ in batches]), get_preprocess("tiny-imagenet").normalize(data.images))
    assert len(BatchLoader(data, 3, train=False, seed=0, drop_last=True)) == 2
    assert [len(y) for _, y in BatchLoader(data, 3, train=True, seed=0, drop_last=True)] == [3, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_loader_yields_the_same_batches_as_cpu():
    data = synthetic("cifar100", list(range(40)), shape=(3, 32, 32))
    for (xc, yc), (xg, yg) in zip(BatchLoader(data, 16, True, 1), BatchLoader(data, 16, True, 1, device="cuda")):
        assert xg.is_cuda and torch.allclose(xc, xg.cpu()) and torch.equal(yc, yg.cpu())
