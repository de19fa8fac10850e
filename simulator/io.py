"""Writing outputs whole or not at all."""
import os
import tempfile
from pathlib import Path

from .errors import UserError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and a rename.

    A reader never sees a half-written file, and a failure leaves no file behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path) -> None:
    """Fail early, before long work, if `path` cannot be created."""
    path = Path(path)
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file path")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{path}: cannot write (folder {parent} is not writable)")
