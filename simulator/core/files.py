"""Reading input files in one checked step, and writing outputs whole or not at all."""
import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import UserError

# Largest input text file (a scenario, a profile, the datasheets) read, in bytes. A scenario is
# a few kB and a profile about 8 kB (1 MB for a model of 1,000 blocks); 4 MiB of YAML still
# parses in about 2 s, while a 100 MB file would take a minute and gigabytes of memory.
MAX_TEXT_BYTES = 4 * 2**20
# Largest output table read back (a report redrawn from results.csv or split_points.csv): a
# sweep's split_points.csv is about 25 kB per setting, so 1,000 settings are 25 MB.
MAX_TABLE_BYTES = 1024 * 2**20


def read_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the input file `path`, a `what` ("scenario", "profile", ...).

    A missing file, a folder, something that is not a regular file (a FIFO would block, a
    device never end), an unreadable file, one over `limit` bytes or bytes that are not UTF-8
    are each a one-line UserError naming the file. A leading UTF-8 byte-order mark is dropped.
    """
    path = Path(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"{path}: {what} file not found") from None
    except ValueError:  # a NUL character, which no file name can hold
        raise UserError(f"{str(path)!r}: not a valid file name for a {what} file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path}: is a folder, expected a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path}: is not a regular file, expected a {what} file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} file ({exc.strerror})") from None
    if len(data) > limit:
        raise UserError(f"{path}: {what} file is {max(info.st_size, len(data)) / 2**20:.1f} MiB, over the limit of "
                        f"{limit // 2**20} MiB for this file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start})") from None


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; rename it to `path` when the block ends
    without an exception, delete it otherwise.

    A reader never sees a half-written file, and a failure leaves no file behind. A folder that
    cannot be written is a UserError naming the path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; outputs are ordinary files
        try:
            os.replace(tmp, path)
        except OSError as exc:  # e.g. a folder where the file should go
            raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (`atomic_file`)."""
    with atomic_file(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (`atomic_file`)."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


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
    try:
        if path.is_dir():
            raise UserError(f"{path}: is a folder, expected a file path")
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        parent_is_dir = parent.is_dir()
    except OSError as exc:  # a name too long for the file system
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    if not parent_is_dir:
        raise UserError(f"{path}: cannot write ({parent} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror} in {parent})") from None
