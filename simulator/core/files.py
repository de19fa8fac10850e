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
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: str | Path) -> None:
    """Fail early, before long work, if a file cannot be created at `path`.

    Probes by creating (and removing) a temporary file in the nearest existing folder, so
    read-only or virtual file systems are caught, not only permission bits.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file path")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: cannot write ({parent} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror} in {parent})") from None
