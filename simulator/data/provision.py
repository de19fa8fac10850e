"""Where each dataset's files are, and getting them when they are missing.

Places searched for one split (first hit wins; the error names every one):
  root given       ->  <root>/<folder>, then <root> itself
  root not given   ->  $SIMULATOR_DATA/<folder> (or ./data/<folder> when unset), and for
                       fashion-mnist also /usr/share/datasets/fashion-mnist (Debian's package
                       `dataset-fashion-mnist`).

A missing dataset is provisioned as the `download` policy allows (scenario key
`accuracy.download`, `simulate data --download`):
  auto     1. Debian's package, where the dataset has one, Debian's folder is searched (no root
              given), apt-get is on PATH and we run as root: one line on stderr says so first (it
              changes the system), then `apt-get update` if apt does not know the package yet,
              then `apt-get install -y`; non-interactive, each command at most APT_TIMEOUT_S.
           2. else the official download into the data folder, where a network exists.
  network  only 2: nothing outside the data folder changes.
  never    neither: a missing dataset is an error.
When nothing works, one UserError line names every place searched, every way tried and why it
failed, and how to get the data by hand. A failed attempt leaves nothing behind: downloads are
staged in a temporary folder inside the data folder, checked against their MD5 and moved into
place whole; a data folder created for them is removed again.
"""
import contextlib
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..core.errors import UserError
from ..core.progress import progress_bar
from ..core.text import one_line
from .specs import get_dataset_spec

SPLITS = ("train", "test")
Download = Literal["auto", "network", "never"]  # how a missing dataset may be fetched (module docstring)
DOWNLOAD_POLICIES = get_args(Download)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package puts the IDX files
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}  # dataset -> Debian package
APT_TIMEOUT_S = 600.0  # longest run of one apt-get command (update, install)
NETWORK_TIMEOUT_S = 15.0  # longest wait to connect, or for the next bytes, of one download
USER_AGENT = "edge-cloud-simulator (dataset download)"


@dataclass(frozen=True)
class Layout:
    """Where a dataset's files live and how a user gets them."""
    folder: str  # folder name under the data root
    required: dict[str, tuple[tuple[str, ...], ...]]  # split -> files that must exist (any of each tuple)
    downloads: tuple[tuple[str, str, str], ...]  # (url, file name, md5) of the official files
    extract: bool  # True: the downloads are archives holding `folder`; False: the files of `folder` themselves
    how_to_get: str  # by hand; {data} is the data root, {target} the dataset's folder in it


def _idx(prefix: str) -> tuple[tuple[str, ...], ...]:
    """The images and labels IDX files of one split, each gzipped or not."""
    names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    return tuple((f"{n}.gz", n) for n in names)


_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
LAYOUTS = {
    "fashion-mnist": Layout(
        "fashion-mnist", {"train": _idx("train"), "test": _idx("t10k")},
        tuple((_FASHION_URL + f, f, md5) for f, md5 in (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"))),
        False,
        "get it with `sudo apt-get install dataset-fashion-mnist`, or put the four IDX files of "
        f"{_FASHION_URL} (train-images-idx3-ubyte.gz, ...) in {{target}}"),
    "cifar10": Layout(
        "cifar-10-batches-py",
        {"train": tuple((f"data_batch_{i}",) for i in range(1, 6)), "test": (("test_batch",),)},
        (("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
          "c58f30108f718f92721af3b95e74349a"),),
        True, "extract https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into {data}"),
    "cifar100": Layout(
        "cifar-100-python", {"train": (("train",),), "test": (("test",),)},
        (("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz",
          "eb9058c3a382ffc7106e4002c42a8d85"),),
        True, "extract https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into {data}"),
    "tiny-imagenet": Layout(
        "tiny-imagenet-200",
        {"train": (("wnids.txt",), ("train",)), "test": (("wnids.txt",), ("val/val_annotations.txt",))},
        (("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "tiny-imagenet-200.zip",
          "90528d7ca1a48142e341f4ef8d21d0de"),),
        True, "unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip into {data}"),
}


# ---- finding ----------------------------------------------------------------------------------

def data_root(root: str | Path | None) -> Path:
    """`root`, else $SIMULATOR_DATA, else ./data; absolute."""
    return Path(root or os.environ.get("SIMULATOR_DATA") or "data").expanduser().absolute()


def places(name: str, root: str | Path | None) -> list[Path]:
    """Every folder searched for `name`, in order (see the module docstring)."""
    folder = LAYOUTS[name].folder
    if root is not None:
        return [data_root(root) / folder, data_root(root)]
    return [data_root(None) / folder] + ([DEBIAN_FASHION_MNIST] if name == "fashion-mnist" else [])


def has_split(place: Path, name: str, split: str) -> bool:
    return all(any((place / f).exists() for f in choices) for choices in LAYOUTS[name].required[split])


def find(name: str, split: str, root: str | Path | None) -> Path | None:
    """The first place holding the split, or None."""
    return next((place for place in places(name, root) if has_split(place, name, split)), None)


def locate(name: str, split: str, root: str | Path | None = None, download: Download = "never") -> Path:
    """The folder holding `split` of `name`, provisioning the dataset first if `download` allows.

    Each way the policy allows is tried in turn until the split is found; when none brings it,
    a UserError line says where it looked, what was tried and how to get the data.
    """
    if download not in DOWNLOAD_POLICIES:
        raise ValueError(f"download must be one of {DOWNLOAD_POLICIES}, got {download!r}")
    found = find(name, split, root)
    if found is not None:
        return found
    tried = []
    for label, attempt in _attempts(name, root, download):
        tried.append(attempt() or f"{label} (done, but the {split} split is still missing)")
        found = find(name, split, root)
        if found is not None:
            return found
    looked = ", ".join(str(p) for p in places(name, root))
    tried_text = ("tried " + "; then ".join(tried) if tried
                  else "fetching it is off (download: never; auto fetches it)")
    how = LAYOUTS[name].how_to_get.format(data=data_root(root), target=data_root(root) / LAYOUTS[name].folder)
    hint = "" if root is not None else f" (or set SIMULATOR_DATA to the folder that holds {LAYOUTS[name].folder}/)"
    raise UserError(f"{name} {split} split not found; looked in {looked}; {tried_text}; {how}{hint}")


def provision_dataset(name: str, root: str | Path | None = None, download: Download = "auto") -> str:
    """Make both splits of `name` present, as `download` allows (`simulate data`); one line saying where."""
    get_dataset_spec(name)
    there = all(find(name, split, root) is not None for split in SPLITS)
    folders = sorted({str(locate(name, split, root, download)) for split in SPLITS})
    return f"{name}: train and test splits in {' and '.join(folders)}" + (
        " (already there; nothing to do)" if there else "")


def _attempts(name: str, root: str | Path | None, download: Download) -> list[tuple[str, Callable[[], str | None]]]:
    """(label, attempt) for each way to provision, in order; an attempt returns None when it did its
    part, else one line saying what it tried and why that failed."""
    attempts = []
    if download == "auto" and name in DEBIAN_PACKAGES and root is None:
        package = DEBIAN_PACKAGES[name]
        attempts.append((f"`apt-get install {package}`", lambda: _apt_install(name, package)))
    if download in ("auto", "network"):
        attempts.append((f"downloading {LAYOUTS[name].downloads[0][0]}", lambda: _download(name, root)))
    return attempts


def _say(line: str) -> None:
    """One line on stderr about something that changes the machine."""
    print(f"simulate: {line}", file=sys.stderr, flush=True)


# ---- Debian's package -------------------------------------------------------------------------

def _apt_install(name: str, package: str) -> str | None:
    """`apt-get install -y PACKAGE` as root (after `apt-get update` when apt does not know it yet)."""
    what = f"`apt-get install {package}`"
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return f"{what} (not run: no apt-get on PATH)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{what} (not run: not root)"
    apt_cache = shutil.which("apt-cache")
    known = apt_cache is not None and _run([apt_cache, "show", package], 60.0)[0] == 0
    steps = ([("update", [apt_get, "update", "-q"])] if not known else []) + [
        ("install", [apt_get, "install", "-y", "-q", "--no-install-recommends", package])]
    _say(f"{name} not found; installing Debian's {package} as root: "
         f"{' && '.join('apt-get ' + ' '.join(c[1:]) for _, c in steps)} "
         f"(non-interactive, at most {APT_TIMEOUT_S:g} s per command)")
    for step, command in steps:
        returncode, output = _run(command, APT_TIMEOUT_S)
        if returncode is None:
            return f"{what} (apt-get {step} stopped after {APT_TIMEOUT_S:g} s)"
        if returncode != 0:
            lines = [line for line in output.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("E:")]
            reason = (errors or lines or [f"exit status {returncode}"])[-1]
            return f"{what} (apt-get {step} failed: {one_line(reason)})"
    return None


def _run(command: list[str], timeout_s: float) -> tuple[int | None, str]:
    """(exit status, stdout and stderr) of a non-interactive command; (None, "") when it ran past `timeout_s`
    (it is then asked to stop, and killed 10 s later)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", env=env)
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        if process.poll() is None:  # timed out, or Ctrl-C: stop it, never leave it behind
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


# ---- the official download --------------------------------------------------------------------

class _DownloadFailed(Exception):
    pass


def _download(name: str, root: str | Path | None) -> str | None:
    """Fetch the official files into the data root, staged and checked; None when they are in place."""
    layout, base = LAYOUTS[name], data_root(root)
    url = layout.downloads[0][0]
    try:
        with _staging(base) as staging:
            for i, (url, filename, md5) in enumerate(layout.downloads):
                announce = f"{name} not found; downloading it from {url.split('/')[2]} into {base / layout.folder}"
                _fetch(url, staging / filename, md5, announce if i == 0 else None)
            _move_into_place(layout, staging, base)
    except _DownloadFailed as exc:
        return f"downloading {url} ({exc})"
    except OSError as exc:  # the data folder cannot be created or written
        return f"downloading {url} into {base} ({one_line(f'{type(exc).__name__}: {exc}')})"
    return None


@contextlib.contextmanager
def _staging(base: Path) -> Iterator[Path]:
    """A temporary folder inside `base` (created if missing), removed on the way out; on failure
    the folders created for it go too."""
    created = [p for p in (base, *base.parents) if not p.exists()]
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=base))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _fetch(url: str, path: Path, md5: str, announce: str | None) -> None:
    """Download `url` to `path` and check its MD5; _DownloadFailed with one line on any failure.
    `announce` goes to stderr once the server answers.

    Every network wait is at most NETWORK_TIMEOUT_S, so no network fails within that time (at
    once when no name resolves).
    """
    digest = hashlib.md5(usedforsecurity=False)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S) as response, open(path, "wb") as out:
            if announce is not None:
                _say(announce)
            with progress_bar(total=response.length, desc=f"download {path.name}", unit="B", unit_scale=True,
                              leave=False) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError and timeouts are OSErrors
        reason = getattr(exc, "reason", None)  # URLError wraps the socket's error
        if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
            raise _DownloadFailed(f"no answer within {NETWORK_TIMEOUT_S:g} s") from None
        text = f"{type(exc).__name__}: {reason if isinstance(reason, OSError) else exc}"
        raise _DownloadFailed(one_line(text)) from None
    if digest.hexdigest() != md5:
        raise _DownloadFailed(f"its MD5 is {digest.hexdigest()}, expected {md5}: a damaged or changed file")


def _move_into_place(layout: Layout, staging: Path, base: Path) -> None:
    """Downloaded files (or the folder their archive holds) from `staging` into `base`."""
    target = base / layout.folder
    if not layout.extract:
        target.mkdir(exist_ok=True)
        for _, filename, _ in layout.downloads:
            os.replace(staging / filename, target / filename)
        return
    extracted = staging / "extracted"
    for _, filename, _ in layout.downloads:
        try:
            if filename.endswith(".zip"):
                with zipfile.ZipFile(staging / filename) as archive:
                    archive.extractall(extracted)  # zipfile drops absolute paths and ".." itself
            else:
                with tarfile.open(staging / filename) as archive:
                    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    archive.extractall(extracted, **safe)
        except (tarfile.TarError, zipfile.BadZipFile) as exc:
            raise _DownloadFailed(f"{filename} cannot be extracted ({one_line(str(exc))})") from None
    if not (extracted / layout.folder).is_dir():
        raise _DownloadFailed(f"the archive holds no {layout.folder}/")
    if target.exists():  # an incomplete copy: complete it
        shutil.copytree(extracted / layout.folder, target, dirs_exist_ok=True)
    else:
        os.replace(extracted / layout.folder, target)
