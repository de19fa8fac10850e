"""Reading the four datasets from their published on-disk formats.

`load_dataset` returns the pixels exactly as stored (uint8, N x C x H x W) in memory: the largest,
Tiny ImageNet train, is 100,000 x 3 x 64 x 64 bytes = 1.2 GB. Batching, augmentation and subsets
are in `batching`; where the files are looked for, and how a missing dataset is fetched, in
`provision`.
"""
import gzip
import hashlib
import math
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from ..core.files import atomic_file
from ..core.progress import progress_bar
from .provision import LAYOUTS, SPLITS, Download, locate
from .specs import get_dataset_spec

CACHE_VERSION = 1  # bump when the decoded-cache layout changes; old files are then ignored
JPEG_SUFFIXES = {".jpeg", ".jpg"}


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split of a dataset, held in memory exactly as stored on disk."""
    images: torch.Tensor  # uint8, N x C x H x W, pixel values 0..255
    labels: torch.Tensor  # int64, N, class index
    name: str  # key of DATASETS, e.g. "cifar10"
    split: str  # "train" | "test"
    source: Path  # folder the files were read from

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(f"labels must be int64 of length {len(self.images)}, got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)


def _read_idx(path: Path, magic: int, shape_tail: tuple[int, ...]) -> np.ndarray:
    """An IDX array (big-endian header: magic, one uint32 size per dimension, then uint8 data)."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read ({exc}); the file is corrupt, fetch it again") from None
    ndim = 1 + len(shape_tail)
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise UserError(f"{path}: not an IDX file (magic number {found}, expected {magic}); the file is corrupt or "
                        f"misnamed, fetch it again")
    header_bytes = 4 + 4 * ndim
    sizes = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4)) if len(data) >= header_bytes \
        else (0,) * ndim
    if len(data) != header_bytes + math.prod(sizes) or sizes[1:] != shape_tail:
        raise UserError(f"{path}: IDX header says {sizes} but the file holds {len(data) - header_bytes} data bytes "
                        f"(expected N x {' x '.join(map(str, shape_tail)) or '1'}); the file is truncated or "
                        f"corrupt, fetch it again")
    return np.frombuffer(data, np.uint8, offset=header_bytes).reshape(sizes).copy()


def _read_fashion_mnist(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    (images_gz, images_raw), (labels_gz, labels_raw) = LAYOUTS["fashion-mnist"].required[split]
    pick = lambda gz, raw: folder / gz if (folder / gz).exists() else folder / raw  # noqa: E731
    images = _read_idx(pick(images_gz, images_raw), 2051, (28, 28))
    labels = _read_idx(pick(labels_gz, labels_raw), 2049, ())
    if len(images) != len(labels) or (len(labels) and labels.max() >= 10):
        raise UserError(f"{folder}: {split} has {len(images)} images but {len(labels)} labels (or a label above 9); "
                        f"the files do not belong together, fetch them again")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _read_cifar(folder: Path, split: str, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Krizhevsky's python pickles: dicts with b"data" (N x 3072 uint8, R then G then B planes,
    each row-major 32 x 32) and b"labels" (CIFAR-10) or b"fine_labels" (CIFAR-100).

    Unpickling runs code from the file, as torchvision does; read only files you trust.
    """
    label_key, classes = (b"labels", 10) if name == "cifar10" else (b"fine_labels", 100)
    images, labels = [], []
    for (file,) in LAYOUTS[name].required[split]:
        path = folder / file
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data, target = np.asarray(batch[b"data"]), np.asarray(batch[label_key], dtype=np.int64)
        except Exception as exc:  # unpickling can raise almost anything on a damaged file
            raise UserError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc}); fetch it again") \
                from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or target.shape != (len(data),) \
                or (len(target) and not 0 <= target.min() <= target.max() < classes):
            raise UserError(f"{path}: b'data' is {data.dtype} {data.shape} with {target.shape} labels, expected "
                            f"uint8 N x 3072 and N labels in 0..{classes - 1}; fetch it again")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(target)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _tiny_imagenet_files(folder: Path, split: str) -> tuple[list[Path], list[int]]:
    """Image paths and class indices; the class index is the line number in wnids.txt."""
    wnids = [w.strip() for w in (folder / "wnids.txt").read_text().splitlines() if w.strip()]
    index = {wnid: i for i, wnid in enumerate(wnids)}
    files, labels = [], []
    if split == "train":
        for wnid in wnids:
            images_dir = folder / "train" / wnid / "images"
            if not images_dir.is_dir():
                raise UserError(f"{images_dir}: missing, but {folder / 'wnids.txt'} lists {wnid}; the dataset is "
                                f"incomplete, unzip it again")
            found = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in JPEG_SUFFIXES)
            files += found
            labels += [index[wnid]] * len(found)
        return files, labels
    annotations = folder / "val" / "val_annotations.txt"
    for line_no, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise UserError(f"{annotations}:{line_no}: expected 'file<TAB>wnid<TAB>box', with a wnid from "
                            f"wnids.txt; got {line[:60]!r}")
        files.append(folder / "val" / "images" / fields[0])
        labels.append(index[fields[1]])
    return files, labels


def _decode_jpegs(files: list[Path], desc: str) -> torch.Tensor:
    """Decode 64 x 64 JPEGs into one uint8 N x 3 x 64 x 64 tensor (grayscale ones become RGB)."""
    from PIL import Image

    images = torch.empty((len(files), 3, 64, 64), dtype=torch.uint8)
    pixels = images.numpy()  # shares memory with `images`
    for i, path in enumerate(progress_bar(files, desc=desc, unit="img", leave=False)):
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, Image.DecompressionBombError) as exc:  # missing, unreadable or not an image
            raise UserError(f"{path}: cannot decode ({exc}); unzip the dataset again") from None
        if rgb.size != (64, 64):
            raise UserError(f"{path}: image is {rgb.size[0]} x {rgb.size[1]} px, Tiny ImageNet images are 64 x 64")
        pixels[i] = np.asarray(rgb).transpose(2, 0, 1)
    return images


def _user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "simulator" / "datasets"


def _cache_names(folder: Path, split: str, files: list[Path]) -> tuple[str, str]:
    """(file name of the cache, glob of its stale versions).

    The name holds a hash of the folder path (so caches of two copies never collide in the
    shared user cache) and a hash of the split's file list with each file's size and mtime
    (so adding, removing, replacing or touching any image, wnids.txt or the annotations
    gives a new name and the folder is decoded again).
    """
    meta = [folder / "wnids.txt"] + ([folder / "val" / "val_annotations.txt"] if split == "test" else [])
    content = hashlib.sha256(f"v{CACHE_VERSION}:{split}".encode())
    for path in meta + files:
        try:
            stat = path.stat()
        except OSError:
            raise UserError(f"{path}: listed by the dataset but missing; unzip the dataset again") from None
        content.update(f"\n{path.relative_to(folder)}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    prefix = f"{folder.name}.{split}.{where}"
    return f"{prefix}.{content.hexdigest()[:16]}.pt", f"{prefix}.*.pt"


def _save_cache(directories: list[Path], name: str, stale_glob: str, payload: dict) -> Path | None:
    """Write `payload` to the first writable directory, whole or not at all."""
    for directory in directories:
        try:
            with atomic_file(directory / name, "wb") as handle:
                torch.save(payload, handle)
        except UserError:  # this folder cannot be written: try the next
            continue
        for stale in directory.glob(stale_glob):
            if stale.name != name:
                stale.unlink(missing_ok=True)
        return directory / name
    warnings.warn(f"could not write a decoded-image cache in any of {', '.join(map(str, directories))}; "
                  f"the JPEGs will be decoded again next time")
    return None


def _read_tiny_imagenet(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The Tiny ImageNet tree; "test" reads val/ (the official test images carry no labels).

    Decoded pixels are cached as `<folder>.<split>.<path hash>.<content hash>.pt` next to the
    folder, or under ~/.cache/simulator/datasets when that is not writable; decoding 100,000
    JPEGs takes about a minute, reading the cache about a second.
    """
    files, labels_list = _tiny_imagenet_files(folder, split)
    name, stale_glob = _cache_names(folder, split, files)
    labels = torch.tensor(labels_list, dtype=torch.int64)
    directories = [folder.parent, _user_cache_dir()]
    for path in (d / name for d in directories):
        if path.exists():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
                if cached["images"].shape == (len(files), 3, 64, 64) and torch.equal(cached["labels"], labels):
                    return cached["images"], labels
            except Exception as exc:  # a damaged cache is only a slow path, never an error
                warnings.warn(f"{path}: ignoring unreadable cache ({type(exc).__name__}: {exc})")
    images = _decode_jpegs(files, f"decoding tiny-imagenet {split}")
    _save_cache(directories, name, stale_glob, {"version": CACHE_VERSION, "images": images, "labels": labels})
    return images, labels


def load_dataset(name: str, split: str, root: str | Path | None = None, download: Download = "never") -> ImageSet:
    """One split ("train" or "test") of dataset `name`, read into memory as uint8 pixels.

    `root` is the data folder (default $SIMULATOR_DATA, else ./data; `provision` lists every place
    searched). `download` ("auto", "network" or "never") says how a missing dataset may be fetched
    (`provision`); "never" by default, so a plain call changes nothing on the machine.
    """
    get_dataset_spec(name)
    if split not in SPLITS:
        raise UserError(f"dataset split {split!r} is not valid; valid: {', '.join(SPLITS)}")
    folder = locate(name, split, root, download)
    if name == "fashion-mnist":
        images, labels = _read_fashion_mnist(folder, split)
    elif name == "tiny-imagenet":
        images, labels = _read_tiny_imagenet(folder, split)
    else:
        images, labels = _read_cifar(folder, split, name)
    return ImageSet(images, labels, name, split, folder)
