"""What each supported dataset looks like to a model and to a network link.

Only shapes and sizes live here; loaders that read the files come with the training code.
A raw sample is what the dataset stores on disk and what full-cloud training uploads:
uint8 pixels (1 byte per pixel per channel) plus a 1-byte label (every supported dataset
has at most 256 classes).
"""
from dataclasses import dataclass

from ..core.errors import UserError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    input_shape: tuple[int, int, int]  # (channels, height, width)
    num_classes: int
    train_samples: int
    test_samples: int
    label_bytes: int = 1  # uint8 class index

    @property
    def raw_sample_bytes(self) -> int:
        """Stored size of one input image in bytes: C x H x W uint8 values."""
        c, h, w = self.input_shape
        return c * h * w

    def shape_at(self, input_size: int | None) -> tuple[int, int, int]:
        """(channels, size, size): the dataset's images resized to `input_size` (None: native)."""
        if input_size is None:
            return self.input_shape
        if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 1:
            raise UserError(f"input size must be a positive whole number of pixels, got {input_size!r}")
        return (self.input_shape[0], input_size, input_size)

    def raw_bytes_at(self, input_size: int | None) -> int:
        """Stored size of one image at `input_size`: uint8, C x size x size."""
        c, h, w = self.shape_at(input_size)
        return c * h * w


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("fashion-mnist", (1, 28, 28), 10, 60_000, 10_000),
        DatasetSpec("cifar10", (3, 32, 32), 10, 50_000, 10_000),
        DatasetSpec("cifar100", (3, 32, 32), 100, 50_000, 10_000),
        DatasetSpec("tiny-imagenet", (3, 64, 64), 200, 100_000, 10_000),
    )
}


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}") from None
