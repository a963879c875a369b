"""Load an image dataset once into uint8 tensors, with an on-disk cache per split and resolution.

Two layouts are accepted under a data root ``ROOT``:

* torchvision's CIFAR binary files: ``ROOT/cifar-10-batches-py/`` or ``ROOT/cifar-100-python/``
  (downloaded through torchvision when absent and ``download=True``);
* an image folder: ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*``, classes sorted by name,
  files sorted by name within a class.

The first load decodes every image and writes ``ROOT/.speedynas_cache/<layout>-<split>-<res>.pt``
(atomic write). The cache stores a fingerprint of the source files (names, sizes, mtimes), so
changed data rebuilds it; a corrupted or unreadable cache is rebuilt too. Caches are read with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from speedynas_core.atomic_io import atomic_torch_save
from speedynas_core.errors import SpeedyNASError

log = logging.getLogger(__name__)

Split = Literal["train", "test"]

CACHE_DIRNAME = ".speedynas_cache"
CACHE_VERSION = 1
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DATASET_NAMES = ("cifar10", "cifar100", "imagefolder")
_RESIZE_CHUNK = 4096


@dataclass
class ImageTensors:
    """A whole split in memory: ``images`` uint8 N x 3 x H x W, ``labels`` int64 N, class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``classes``)."""
        return len(self.classes)

    @property
    def resolution(self) -> tuple[int, int]:
        """Image height and width in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[3])


#: Classes of the named datasets (an image-folder copy of one must hold all of them).
DECLARED_CLASSES = {"cifar10": 10, "cifar100": 100}


def load_dataset(
    name: str,
    root: str | os.PathLike[str],
    split: Split = "train",
    resolution: int | None = None,
    *,
    download: bool = True,
    cache: bool = True,
) -> ImageTensors:
    """Load ``split`` of dataset ``name`` (cifar10, cifar100, imagefolder) found under ``root``.

    ``resolution`` resizes (antialiased, once, cached) to ``resolution x resolution`` pixels.
    ``download`` lets torchvision fetch CIFAR when neither layout is present; ``cache=False``
    neither reads nor writes ``ROOT/.speedynas_cache``.
    """
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in DATASET_NAMES:
        raise SpeedyNASError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if split not in ("train", "test"):
        raise SpeedyNASError(f"unknown split {split!r}; valid splits: train, test")
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                   or resolution < 1):
        raise SpeedyNASError(f"resolution must be a positive integer or None, got {resolution!r}")
    source = _find_source(key, Path(root), split, download)
    declared = DECLARED_CLASSES.get(key)
    if source.layout == "folder" and declared is not None and len(source.classes) != declared:
        raise SpeedyNASError(f"{name} has {declared} classes but the image folder "
                             f"{source.root / split} holds {len(source.classes)} class folders "
                             f"({', '.join(source.classes)}); add the missing ones, or use "
                             "data.dataset=imagefolder for another set of classes")
    return _load_cached(source, resolution, cache)


# ----------------------------------------------------------------------------- layouts

@dataclass
class _Source:
    """Where a split's files are and how to read them."""

    layout: str          # "folder", "cifar10" or "cifar100"
    root: Path           # the data root; the cache lives in root/CACHE_DIRNAME
    split: str
    files: list[str]     # every source file that determines the content
    labels: list[int]    # folder layout: the class index of each file (empty for binary)
    classes: list[str]   # folder layout: class names (empty for binary layouts until read)
    key: str             # fingerprint of layout, split, file names, sizes and mtimes


def _fingerprint(layout: str, split: str, records: list[tuple[str, os.stat_result]]) -> str:
    """Hash of the layout, split and every (relative name, size, mtime) record."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{layout}|{split}\n".encode())
    h.update("".join(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n"
                     for name, st in records).encode())
    return h.hexdigest()


def _torchvision_cifar(key: str) -> Any:
    from torchvision import datasets
    return datasets.CIFAR10 if key == "cifar10" else datasets.CIFAR100


def _binary_files(key: str, base: Path, split: str) -> list[str] | None:
    """The CIFAR binary files of ``split`` in ``base``, or None when any is missing."""
    tv = _torchvision_cifar(key)
    names = [n for n, _ in (tv.train_list if split == "train" else tv.test_list)]
    files = [os.path.join(base, n) for n in names + [tv.meta["filename"]]]
    return files if all(os.path.isfile(f) for f in files) else None


def _find_binary(key: str, root: Path, split: str) -> _Source | None:
    """The binary files in ``root/<base_folder>`` (or in ``root`` if it is that folder)."""
    base_folder = _torchvision_cifar(key).base_folder
    candidates = [root / base_folder] + ([root] if root.name == base_folder else [])
    for base in candidates:
        files = _binary_files(key, base, split)
        if files is not None:
            records = [(os.path.basename(f), os.stat(f)) for f in files]
            return _Source(key, root, split, files, [], [], _fingerprint(key, split, records))
    return None


def _layouts_hint(key: str, root: Path) -> str:
    """The accepted layouts, spelled out for an error message."""
    folder = f"an image folder ({root}/train/<class>/*, {root}/test/<class>/*)"
    if key == "imagefolder":
        return folder
    binary = root / _torchvision_cifar(key).base_folder
    return f"torchvision's CIFAR binary files ({binary}/) or {folder}"


def _find_source(key: str, root: Path, split: str, download: bool) -> _Source:
    """Pick the layout present under ``root`` (binary first), downloading CIFAR if allowed."""
    if key != "imagefolder":
        found = _find_binary(key, root, split)
        if found is not None:
            return found
    if (root / split).is_dir():
        return _scan_folder(root, split)
    expected = _layouts_hint(key, root)
    if key == "imagefolder" or not download:
        raise SpeedyNASError(f"no {split} data found at {root}; expected {expected}")
    try:
        _torchvision_cifar(key)(root=str(root), train=split == "train", download=True)
    except Exception as err:  # no network, disk full, bad archive: all end the same way
        reason = " ".join(str(err).split()) or type(err).__name__
        raise SpeedyNASError(
            f"no {split} data found at {root} and downloading {key} failed ({reason}); "
            f"expected {expected}") from err
    found = _find_binary(key, root, split)
    if found is None:
        raise SpeedyNASError(f"downloaded {key} into {root} but its {split} files are missing; "
                             f"expected {expected}")
    return found


def _class_names(split_dir: Path) -> list[str]:
    """Sorted class folder names of ``split_dir``; anything else there is an error."""
    classes = []
    for entry in os.scandir(split_dir):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            raise SpeedyNASError(f"unexpected file {entry.path}: {split_dir} must hold only class "
                                 f"folders ({split_dir}/<class>/*)")
        classes.append(entry.name)
    if not classes:
        raise SpeedyNASError(f"no class folders in {split_dir}; expected {split_dir}/<class>/*")
    return sorted(classes)


def _scan_folder(root: Path, split: str) -> _Source:
    """List the image files of an image-folder split and check its structure."""
    split_dir = root / split
    classes = _class_names(split_dir)
    other = root / ("test" if split == "train" else "train")
    if other.is_dir():
        other_classes = _class_names(other)
        if other_classes != classes:
            only_here = sorted(set(classes) - set(other_classes))
            only_there = sorted(set(other_classes) - set(classes))
            raise SpeedyNASError(
                f"class folders of {split_dir} and {other} differ (only in {split}: "
                f"{only_here or 'none'}; only in {other.name}: {only_there or 'none'}); "
                "both splits need the same classes")
    files: list[str] = []
    labels: list[int] = []
    records: list[tuple[str, os.stat_result]] = []
    for label, cls in enumerate(classes):
        class_dir = split_dir / cls
        entries = []
        for entry in os.scandir(class_dir):
            if entry.name.startswith("."):
                continue
            if not entry.is_file():
                raise SpeedyNASError(f"unexpected folder {entry.path}: class folders must hold "
                                     "image files directly")
            if not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                raise SpeedyNASError(f"non-image file {entry.path}; image files end in "
                                     f"{', '.join(IMAGE_EXTENSIONS)}")
            entries.append(entry)
        if not entries:
            raise SpeedyNASError(f"class folder {class_dir} has no images")
        entries.sort(key=lambda e: e.name)
        files.extend(e.path for e in entries)
        labels.extend([label] * len(entries))
        records.extend((f"{cls}/{e.name}", e.stat()) for e in entries)
    return _Source("folder", root, split, files, labels, classes,
                   _fingerprint("folder", split, records))


# ----------------------------------------------------------------------------- reading

def _decode(path: str) -> np.ndarray:
    """One image file as a uint8 H x W x 3 RGB array (PIL; about 65 us per CIFAR JPEG)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            array = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except Exception as err:  # PIL reports bad files with many exception types
        reason = " ".join(str(err).split()) or type(err).__name__
        raise SpeedyNASError(f"cannot decode image {path}: {reason}") from err
    return array


def _read_folder(source: _Source) -> ImageTensors:
    """Decode every image of an image-folder split (about 3-4 s per 50k CIFAR JPEGs).

    Serial on purpose: on 2 cores a thread pool gave no gain and a process pool ~1.5x at the
    price of forking a process that holds torch threads.
    """
    log.info("decoding %d images under %s/%s", len(source.files), source.root, source.split)
    first = _decode(source.files[0])
    images = np.empty((len(source.files), *first.shape), dtype=np.uint8)
    images[0] = first
    for i, path in enumerate(source.files[1:], start=1):
        image = _decode(path)
        if image.shape != first.shape:
            raise SpeedyNASError(
                f"image {path} is {image.shape[1]}x{image.shape[0]} but {source.files[0]} is "
                f"{first.shape[1]}x{first.shape[0]}; all images of a dataset need one size")
        images[i] = image
    labels = torch.tensor(source.labels, dtype=torch.int64)
    chw = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return ImageTensors(chw, labels, list(source.classes))


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batch files that only builds dicts, lists and numpy arrays."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR file")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as err:
        raise SpeedyNASError(f"cannot read CIFAR file {path}: {err}") from err
    if not isinstance(entry, dict):
        raise SpeedyNASError(f"cannot read CIFAR file {path}: expected a dict, got {type(entry)}")
    return entry


def _read_binary(source: _Source) -> ImageTensors:
    """Read torchvision's CIFAR pickles (data N x 3072 uint8, labels or fine_labels)."""
    meta_key = _torchvision_cifar(source.layout).meta["key"]
    *batches, meta_file = map(Path, source.files)
    chunks, targets = [], []
    for path in batches:
        entry = _unpickle(path)
        try:
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
        except (KeyError, ValueError) as err:
            raise SpeedyNASError(
                f"CIFAR file {path} lacks 'data' N x 3072 and 'labels': {err}") from err
        if len(labels) != len(data):
            raise SpeedyNASError(
                f"CIFAR file {path} has {len(data)} images but {len(labels)} labels")
        chunks.append(data)
        targets.extend(labels)
    meta = _unpickle(meta_file)
    if meta_key not in meta:
        raise SpeedyNASError(f"CIFAR meta file {meta_file} lacks {meta_key!r}")
    classes = [str(c) for c in meta[meta_key]]
    images = torch.from_numpy(np.concatenate(chunks))
    labels_t = torch.tensor(targets, dtype=torch.int64)
    if len(labels_t) and (labels_t.min() < 0 or labels_t.max() >= len(classes)):
        raise SpeedyNASError(
            f"CIFAR labels under {meta_file.parent} are outside 0..{len(classes) - 1}")
    return ImageTensors(images, labels_t, classes)


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 N x C x H x W tensor to ``resolution`` square."""
    from torchvision.transforms.v2 import functional as F
    out = torch.empty((images.shape[0], images.shape[1], resolution, resolution),
                      dtype=torch.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start:start + _RESIZE_CHUNK]
        out[start:start + _RESIZE_CHUNK] = F.resize(chunk, [resolution, resolution],
                                                    antialias=True)
    return out


# ----------------------------------------------------------------------------- cache

def _cache_path(source: _Source, resolution: int | None) -> Path:
    res = "native" if resolution is None else str(resolution)
    return source.root / CACHE_DIRNAME / f"{source.layout}-{source.split}-{res}.pt"


def _read_cache(path: Path, key: str) -> ImageTensors | None:
    """The cached tensors at ``path`` if present, intact and made from the same files."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        images, labels, classes = blob["images"], blob["labels"], blob["classes"]
        valid = (blob.get("version") == CACHE_VERSION and blob.get("key") == key
                 and isinstance(images, torch.Tensor) and images.dtype == torch.uint8
                 and images.dim() == 4 and isinstance(labels, torch.Tensor)
                 and labels.dtype == torch.int64 and labels.shape == images.shape[:1]
                 and isinstance(classes, list) and all(isinstance(c, str) for c in classes))
    except Exception as err:
        warnings.warn(f"rebuilding unreadable dataset cache {path}: {err}", stacklevel=3)
        return None
    if not valid:
        log.info("dataset cache %s is stale; rebuilding", path)
        return None
    return ImageTensors(images, labels, list(classes))


def _write_cache(path: Path, key: str, data: ImageTensors) -> None:
    """Atomically write ``data`` to ``path``; failure to write only warns."""
    blob = {"version": CACHE_VERSION, "key": key, "images": data.images,
            "labels": data.labels, "classes": list(data.classes)}
    try:
        atomic_torch_save(blob, path)
    except OSError as err:
        warnings.warn(f"could not write dataset cache {path}: {err}", stacklevel=3)


def _load_cached(source: _Source, resolution: int | None, cache: bool) -> ImageTensors:
    key = source.key
    if cache and resolution is not None:
        hit = _read_cache(_cache_path(source, resolution), key)
        if hit is not None:
            return hit
    native_path = _cache_path(source, None)
    data = _read_cache(native_path, key) if cache else None
    if data is None:
        data = _read_folder(source) if source.layout == "folder" else _read_binary(source)
        if cache:
            _write_cache(native_path, key, data)
    if resolution is None or data.resolution == (resolution, resolution):
        return data
    data = ImageTensors(resize_images(data.images, resolution), data.labels, data.classes)
    if cache:
        _write_cache(_cache_path(source, resolution), key, data)
    return data
