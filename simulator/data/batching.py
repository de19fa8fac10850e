"""From an in-memory ImageSet to training batches: stratified subsets, per-dataset
normalisation and augmentation, and a seeded batch loader.

`BatchLoader` indexes the uint8 tensor, augments and normalises whole batches with a few tensor
ops, so the per-batch cost is a handful of kernels, not a Python loop over samples (a training
loop should see no data-loading overhead).
"""
import hashlib
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..core.errors import UserError
from .readers import ImageSet
from .specs import get_dataset_spec


def _stratified_quota(counts: list[int], n: int, generator: torch.Generator) -> list[int]:
    """Samples to take per class: an equal share, capped at what each class has ("water filling").

    Classes smaller than the share give all they have and the rest is re-divided among the
    others; the n mod k leftover samples go one each to randomly chosen classes.
    """
    quota, open_, left = [0] * len(counts), list(range(len(counts))), n
    while open_:
        share = left // len(open_)
        full = [k for k in open_ if counts[k] <= share]
        if not full:
            break
        for k in full:
            quota[k], left = counts[k], left - counts[k]
        open_ = [k for k in open_ if counts[k] > share]
    if open_:
        for k in open_:
            quota[k] = share
        for j in torch.randperm(len(open_), generator=generator)[: left - share * len(open_)].tolist():
            quota[open_[j]] += 1
    return quota


def subset(images_set: ImageSet, n: int, seed: int) -> ImageSet:
    """`n` samples drawn at random without replacement, stratified by class, in the original order.

    The same (set, n, seed) always gives the same samples.
    """
    total = len(images_set)
    if not 1 <= n <= total:
        raise UserError(f"cannot take {n} samples from {images_set.name} {images_set.split} ({images_set.source}), "
                        f"which has {total}; ask for 1 to {total}")
    generator = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(images_set.labels, return_counts=True)
    by_class = torch.argsort(images_set.labels, stable=True).split(counts.tolist())
    quota = _stratified_quota(counts.tolist(), n, generator)
    picked = [members[torch.randperm(len(members), generator=generator)[:q]] for members, q in zip(by_class, quota)]
    index = torch.cat(picked).sort().values
    return replace(images_set, images=images_set.images[index], labels=images_set.labels[index])


@dataclass(frozen=True)
class Preprocess:
    """Per-dataset normalisation x_norm = (x / 255 - mean) / std per channel, and train augmentation:
    random crop of the image zero-padded by `crop_padding_px` on each side (black padding, as
    torchvision's RandomCrop(padding=p)), then a horizontal flip with probability 1/2 if `flip`.
    Works on whole uint8 batches on any device; randomness comes from a CPU torch.Generator.
    """
    mean: tuple[float, ...]  # per channel, in [0, 1] pixel units
    std: tuple[float, ...]
    crop_padding_px: int
    flip: bool

    def affine(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift), each 1 x C x 1 x 1, with x_norm = x_uint8 * scale + shift."""
        mean, std = torch.tensor(self.mean, dtype=torch.float64), torch.tensor(self.std, dtype=torch.float64)
        shape = (1, len(self.mean), 1, 1)
        return ((1 / (255 * std)).float().view(shape).to(device), (-mean / std).float().view(shape).to(device))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(images.device)
        return images.to(torch.float32).mul_(scale).add_(shift)

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random (dy, dx) crop offsets in 0..2p (n x 2, int64) and flip flags (n, bool)."""
        offsets = torch.randint(0, 2 * self.crop_padding_px + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        return offsets, flips

    def apply(self, images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Crop and flip in one gather: output pixel (i, j) = padded[dy + i, dx + (W-1-j if flip else j)]."""
        n, c, h, w = images.shape
        pad = self.crop_padding_px
        padded = F.pad(images, (pad, pad, pad, pad))
        i, j = torch.arange(h, device=images.device), torch.arange(w, device=images.device)
        cols = offsets[:, 1:] + torch.where(flips[:, None], w - 1 - j, j)  # n x w
        rows = offsets[:, :1] + i  # n x h
        flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
        return padded.view(n, c, -1).gather(2, flat).view(n, c, h, w)


PREPROCESS: dict[str, Preprocess] = {
    "fashion-mnist": Preprocess((0.2860,), (0.3530,), crop_padding_px=2, flip=False),  # clothes: no flip
    "cifar10": Preprocess((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), crop_padding_px=4, flip=True),
    "cifar100": Preprocess((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), crop_padding_px=4, flip=True),
    "tiny-imagenet": Preprocess((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), crop_padding_px=8, flip=True),
}


def get_preprocess(name: str) -> Preprocess:
    get_dataset_spec(name)
    return PREPROCESS[name]


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed per (seed, epoch): epochs differ, and seed s epoch 1 is not seed s+1 epoch 0."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:8], "big") >> 1


class BatchLoader:
    """Batches of (x float32 normalised N x C x H x W, y int64 N) on `device`, one epoch per iter().

    The uint8 images are copied to `device` once (1.2 GB for Tiny ImageNet train), so a batch costs
    one index_select, one gather (crop + flip) and one fused normalise, with no host transfer.
    Train loaders reshuffle and re-augment every epoch from a generator seeded by (seed, epoch),
    so two loaders with the same seed yield identical batches; `epoch` counts the iter() calls
    made so far and may be set to resume. Test loaders keep the dataset order and only normalise.
    With `input_size`, every batch is then resized to input_size x input_size (`resize_batch`).
    """

    def __init__(self, image_set: ImageSet, batch_size: int, train: bool, seed: int, device: str = "cpu",
                 drop_last: bool = False, input_size: int | None = None):
        if batch_size < 1:
            raise UserError(f"batch size {batch_size} is not valid; use a positive integer")
        self.image_set, self.batch_size, self.train, self.seed = image_set, batch_size, train, seed
        self.drop_last, self.device, self.epoch = drop_last, torch.device(device), 0
        self.input_size = input_size
        self.preprocess = get_preprocess(image_set.name)
        self._images, self._labels = image_set.images.to(self.device), image_set.labels.to(self.device)
        self._scale, self._shift = self.preprocess.affine(self.device)

    def __len__(self) -> int:
        n = len(self._labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        self.epoch += 1
        return self._batches(self.epoch - 1)

    def _batches(self, epoch: int):
        n, size = len(self._labels), self.batch_size
        if self.train:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            order = torch.randperm(n, generator=generator).to(self.device)
            offsets, flips = (t.to(self.device) for t in self.preprocess.draw(n, generator))
        for start in range(0, len(self) * size, size):
            stop = min(start + size, n)
            if self.train:
                index = order[start:stop]
                x = self.preprocess.apply(self._images.index_select(0, index), offsets[start:stop], flips[start:stop])
                y = self._labels.index_select(0, index)
            else:
                x, y = self._images[start:stop], self._labels[start:stop].clone()
            yield resize_batch(x.to(torch.float32).mul_(self._scale).add_(self._shift), self.input_size), y


def resize_batch(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """N x C x H x W images resized to size x size, bilinear (the proxy of a larger input, e.g.
    Fashion-MNIST's 28 pixels as a 224-pixel frame); unchanged when size is None or already theirs."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < images.shape[-1])


def resize_raw(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 N x C x H x W images resized as `resize_batch`, rounded back to uint8."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    return resize_batch(images.to(torch.float32), size).round_().clamp_(0, 255).to(torch.uint8)
