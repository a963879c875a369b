"""Data pipeline: loading + cache, splits, batched augmentation, resumable batch iteration."""
from __future__ import annotations

import io
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speedynas_core.errors import SpeedyNASError
from speedynas_data import datasets
from speedynas_data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    BatchAugment,
    channel_stats,
    crop_flip,
    crop_flip_params,
    denormalize,
    normalize,
    random_crop_flip,
)
from speedynas_data.batches import BatchIterator
from speedynas_data.datasets import CACHE_DIRNAME, ImageTensors, load_dataset, resize_images
from speedynas_data.splits import split_indices, subset_indices

from .conftest import CIFAR10_DIR

CIFAR_DIR = Path(__file__).resolve().parents[1] / "data" / "cifar10"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


@pytest.fixture(scope="module")
def cifar_root() -> Path:
    if not (CIFAR_DIR / "train").is_dir() or not (CIFAR_DIR / "test").is_dir():
        pytest.fail(f"CIFAR-10 images not found at {CIFAR_DIR}: unpack "
                    f"../shared/data/cifar10-jpg.tar.gz there (tar -xzf ... -C {CIFAR_DIR})")
    return CIFAR_DIR


@pytest.fixture(scope="module")
def cifar_train(cifar_root: Path) -> ImageTensors:
    return load_dataset("imagefolder", cifar_root, "train")  # decodes once, then cached


@pytest.fixture(scope="module")
def cifar_test(cifar_root: Path) -> ImageTensors:
    return load_dataset("cifar10", cifar_root, "test")


def _small_folder(root: Path, data: ImageTensors, per_class: int = 3, classes: int = 2) -> Path:
    """A tiny image folder with real CIFAR images written as PNG (lossless)."""
    from PIL import Image
    for split in ("train", "test"):
        for c in range(classes):
            folder = root / split / CLASSES[c]
            folder.mkdir(parents=True)
            members = torch.nonzero(data.labels == c).flatten()[:per_class]
            for k, i in enumerate(members.tolist()):
                Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(
                    folder / f"{k:04d}.png")
    return root


# ----------------------------------------------------------------------------- loading

def test_image_folder_loads_all_images(cifar_train: ImageTensors, cifar_test: ImageTensors) -> None:
    assert cifar_train.images.shape == (50_000, 3, 32, 32)
    assert cifar_test.images.shape == (10_000, 3, 32, 32)
    for data, per_class in ((cifar_train, 5000), (cifar_test, 1000)):
        assert data.images.dtype == torch.uint8 and data.labels.dtype == torch.int64
        assert data.classes == CLASSES and data.num_classes == 10
        assert torch.bincount(data.labels).tolist() == [per_class] * 10
    mean, std = channel_stats(cifar_train.images[::10])
    assert np.allclose(mean, CIFAR10_MEAN, atol=0.01) and np.allclose(std, CIFAR10_STD, atol=0.01)


def test_second_load_reads_cache(cifar_root: Path, cifar_train: ImageTensors,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert (cifar_root / CACHE_DIRNAME / "folder-train-native.pt").is_file()

    def no_decoding(*args: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(datasets, "_read_folder", no_decoding)
    again = load_dataset("cifar10", cifar_root, "train")
    assert torch.equal(again.images, cifar_train.images)
    assert torch.equal(again.labels, cifar_train.labels) and again.classes == cifar_train.classes


def test_decoded_pixels_match_pil(cifar_root: Path, cifar_train: ImageTensors) -> None:
    from PIL import Image
    path = cifar_root / "train" / "cat" / "0007.jpg"
    with Image.open(path) as im:
        expected = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
    index = 3 * 5000 + 7  # classes sorted, files sorted within a class
    assert cifar_train.labels[index] == 3
    assert torch.equal(cifar_train.images[index], expected)


def test_resolution_is_resized_once_and_cached(tmp_path: Path, cifar_train: ImageTensors,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = _small_folder(tmp_path, cifar_train)
    native = load_dataset("imagefolder", root, "train")
    small = load_dataset("imagefolder", root, "train", resolution=16)
    assert small.images.shape == (6, 3, 16, 16) and small.images.dtype == torch.uint8
    assert torch.equal(small.images, resize_images(native.images, 16))
    assert (root / CACHE_DIRNAME / "folder-train-16.pt").is_file()
    monkeypatch.setattr(datasets, "resize_images", lambda *a: pytest.fail("resized again"))
    assert torch.equal(load_dataset("imagefolder", root, "train", 16).images, small.images)


def test_changed_data_invalidates_cache(tmp_path: Path, cifar_train: ImageTensors) -> None:
    root = _small_folder(tmp_path, cifar_train)
    assert len(load_dataset("imagefolder", root, "train")) == 6
    shutil.copy(root / "train" / "airplane" / "0000.png", root / "train" / "airplane" / "0009.png")
    again = load_dataset("imagefolder", root, "train")
    assert len(again) == 7 and torch.equal(again.images[3], again.images[0])


def test_corrupted_cache_is_rebuilt(tmp_path: Path, cifar_train: ImageTensors) -> None:
    root = _small_folder(tmp_path, cifar_train)
    first = load_dataset("imagefolder", root, "test")
    cache = root / CACHE_DIRNAME / "folder-test-native.pt"
    cache.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_dataset("imagefolder", root, "test")
    assert torch.equal(rebuilt.images, first.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("imagefolder", root, "test")  # the rebuilt cache is valid again


def _write_cifar_binary(root: Path, data: ImageTensors, fine: bool, protocol: int) -> Path:
    """Pickled batches in torchvision's CIFAR-10 (or CIFAR-100) layout, 3 images per batch."""
    base = root / ("cifar-100-python" if fine else "cifar-10-batches-py")
    base.mkdir(parents=True)
    names = ["train", "test"] if fine else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    label_key = "fine_labels" if fine else "labels"
    for b, name in enumerate(names):
        idx = list(range(b * 3, b * 3 + 3))
        entry = {"data": data.images[idx].reshape(3, 3072).numpy(),
                 label_key: data.labels[idx].tolist(),
                 "filenames": [f"img{i}.png" for i in idx]}
        (base / name).write_bytes(pickle.dumps(entry, protocol=protocol))
    meta = {"fine_label_names": CLASSES} if fine else {"label_names": CLASSES}
    (base / ("meta" if fine else "batches.meta")).write_bytes(pickle.dumps(meta, protocol))
    return base


@pytest.mark.parametrize("fine, protocol", [(False, 2), (False, pickle.HIGHEST_PROTOCOL),
                                            (True, 2)])
def test_cifar_binary_layout(tmp_path: Path, cifar_test: ImageTensors, fine: bool,
                             protocol: int) -> None:
    scrambled = ImageTensors(cifar_test.images[::500][:18], cifar_test.labels[::500][:18],
                             CLASSES)
    base = _write_cifar_binary(tmp_path, scrambled, fine, protocol)
    name = "cifar100" if fine else "cifar10"
    train = load_dataset(name, tmp_path, "train", download=False)
    test = load_dataset(name, tmp_path, "test", download=False)
    n_train = 3 if fine else 15
    assert torch.equal(train.images, scrambled.images[:n_train])
    assert torch.equal(train.labels, scrambled.labels[:n_train])
    assert torch.equal(test.images, scrambled.images[n_train:n_train + 3])
    assert train.classes == CLASSES
    assert (tmp_path / CACHE_DIRNAME / f"{name}-train-native.pt").is_file()
    # The base folder itself is accepted as the root too.
    assert torch.equal(load_dataset(name, base, "test", download=False).images, test.images)


def test_cifar_binary_refuses_code_in_pickles(tmp_path: Path) -> None:
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (base / name).write_bytes(pickle.dumps({"data": io.BytesIO(b"x")}))
    with pytest.raises(SpeedyNASError, match="not allowed"):
        load_dataset("cifar10", tmp_path, "test", download=False)


def test_missing_data_message_names_path_and_layouts(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SpeedyNASError) as err:
        load_dataset("cifar10", missing, "train", download=False)
    message = str(err.value)
    assert "\n" not in message and str(missing) in message
    assert "cifar-10-batches-py" in message and "train/<class>" in message

    from torchvision import datasets as tv

    def offline(self: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv.CIFAR10, "download", offline)
    with pytest.raises(SpeedyNASError, match="downloading cifar10 failed.*unreachable") as err:
        load_dataset("cifar10", missing, "test")
    assert "\n" not in str(err.value) and "cifar-10-batches-py" in str(err.value)


@pytest.mark.parametrize("problem, match", [
    ("empty_class", "has no images"),
    ("non_image", "non-image file"),
    ("class_mismatch", "class folders of"),
    ("stray_file", "must hold only class folders"),
    ("corrupt_image", "cannot decode image"),
    ("mixed_size", "all images of a dataset need one size"),
])
def test_bad_image_folder(tmp_path: Path, cifar_train: ImageTensors, problem: str,
                          match: str) -> None:
    root = _small_folder(tmp_path, cifar_train)
    if problem == "empty_class":
        (root / "train" / "zebra").mkdir()
        (root / "test" / "zebra").mkdir()
    elif problem == "non_image":
        (root / "train" / "airplane" / "notes.txt").write_text("hi")
    elif problem == "class_mismatch":
        shutil.move(root / "test" / "automobile", root / "test" / "car")
    elif problem == "stray_file":
        (root / "train" / "labels.csv").write_text("a,b")
    elif problem == "corrupt_image":
        (root / "train" / "airplane" / "0000.png").write_bytes(b"garbage")
    else:
        from PIL import Image
        Image.new("RGB", (16, 16)).save(root / "train" / "automobile" / "0001.png")
    with pytest.raises(SpeedyNASError, match=match) as err:
        load_dataset("imagefolder", root, "train")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "mnist"}, "unknown dataset 'mnist'"),
    ({"split": "val"}, "unknown split 'val'"),
    ({"resolution": 0}, "resolution must be"),
])
def test_bad_arguments(cifar_root: Path, kwargs: dict, match: str) -> None:
    args = {"name": "cifar10", "root": cifar_root, "split": "train", **kwargs}
    with pytest.raises(SpeedyNASError, match=match):
        load_dataset(**args)


# ----------------------------------------------------------------------------- splits

def test_reference_split_is_deterministic_and_disjoint() -> None:
    train, val = split_indices(50_000, 0.5, seed=0)
    assert len(train) == len(val) == 25_000 and train.dtype == torch.int64
    assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(50_000))
    again = split_indices(50_000, 0.5, seed=0)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)
    other = split_indices(50_000, 0.5, seed=1)
    assert not torch.equal(other[0], train)
    restored = torch.tensor(train.tolist())  # saveable as a plain list
    assert torch.equal(restored, train)


def test_split_sizes_nest_inside_reference_split() -> None:
    train, val = split_indices(50_000, 0.5, seed=3)
    small_train, small_val = split_indices(50_000, (5000, 1000), seed=3)
    assert len(small_train) == 5000 and len(small_val) == 1000
    assert set(small_train.tolist()) <= set(train.tolist())
    assert set(small_val.tolist()) <= set(val.tolist())


def test_stratified_split(cifar_train: ImageTensors) -> None:
    train, val = split_indices(50_000, (2000, 500), seed=0, labels=cifar_train.labels)
    assert torch.bincount(cifar_train.labels[train]).tolist() == [200] * 10
    assert torch.bincount(cifar_train.labels[val]).tolist() == [50] * 10
    assert not set(train.tolist()) & set(val.tolist())
    again = split_indices(50_000, (2000, 500), seed=0, labels=cifar_train.labels)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)


def test_subset_indices() -> None:
    indices = torch.arange(100, 200)
    sub = subset_indices(indices, 10, seed=5)
    assert len(sub) == 10 and len(set(sub.tolist())) == 10
    assert set(sub.tolist()) <= set(indices.tolist())
    assert torch.equal(sub, subset_indices(indices, 10, seed=5))
    assert torch.equal(sub[:5], subset_indices(indices, 5, seed=5))
    assert torch.equal(subset_indices(indices, None), indices)


@pytest.mark.parametrize("args, match", [
    ((100, 1.5), "fraction"), ((100, (60, 50)), "train \\+ val"), ((0, 0.5), "num must"),
    ((100, "half"), "split must"),
])
def test_split_errors(args: tuple, match: str) -> None:
    with pytest.raises(SpeedyNASError, match=match):
        split_indices(*args)
    with pytest.raises(SpeedyNASError, match="subset size"):
        subset_indices(torch.arange(10), 11)


# ----------------------------------------------------------------------------- augmentation

def test_crop_flip_exact_pixels() -> None:
    image = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)
    batch = image.repeat(3, 1, 1, 1)
    offsets = torch.tensor([[0, 0], [2, 1], [1, 1]])
    flips = torch.tensor([False, True, False])
    out = crop_flip(batch, offsets, flips, padding=1)
    # padded:  0 0 0 0 0 / 0 1 2 3 0 / 0 4 5 6 0 / 0 7 8 9 0 / 0 0 0 0 0
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    assert out[1, 0].tolist() == [[6, 5, 4], [9, 8, 7], [0, 0, 0]]  # rows 2-4, cols 1-3, mirrored
    assert torch.equal(out[2], image[0])                              # centre crop is identity


def test_random_crop_flip_matches_drawn_params(cifar_train: ImageTensors) -> None:
    batch = cifar_train.images[:64]
    out = random_crop_flip(batch, torch.Generator().manual_seed(7), padding=4)
    offsets, flips = crop_flip_params(64, 4, torch.Generator().manual_seed(7))
    padded = F.pad(batch, (4, 4, 4, 4))
    for b in range(64):
        oy, ox = offsets[b].tolist()
        crop = padded[b, :, oy:oy + 32, ox:ox + 32]
        assert torch.equal(out[b], crop.flip(-1) if flips[b] else crop)
    assert 0 < int(flips.sum()) < 64 and len(set(map(tuple, offsets.tolist()))) > 10


def test_augment_shapes_dtypes_and_determinism(cifar_train: ImageTensors) -> None:
    batch = cifar_train.images[:32]
    aug = BatchAugment()
    a = aug.train(batch, torch.Generator().manual_seed(0))
    b = aug.train(batch, torch.Generator().manual_seed(0))
    c = aug.train(batch, torch.Generator().manual_seed(1))
    assert a.shape == (32, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    cl = BatchAugment(channels_last=True).train(batch, torch.Generator().manual_seed(0))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, a)
    assert torch.equal(BatchAugment(padding=0, flip=False).train(batch, torch.Generator()),
                       aug.eval(batch))


def test_normalisation_inverts(cifar_train: ImageTensors) -> None:
    batch = cifar_train.images[100:164]
    x = BatchAugment().eval(batch)
    expected = (batch.float() / 255 - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(denormalize(x), batch)
    assert torch.equal(normalize(batch), x)
    with pytest.raises(SpeedyNASError, match="uint8"):
        BatchAugment().eval(x)


# ----------------------------------------------------------------------------- batches

def _collect(batches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in batches]


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2)
                                    for (x1, y1), (x2, y2) in zip(a, b))


@pytest.mark.parametrize("stop", [3, 15, 16, 20])  # mid-epoch, last batch, epoch boundary
def test_resume_mid_epoch_gives_identical_batches(cifar_train: ImageTensors, tmp_path: Path,
                                                  stop: int) -> None:
    indices = split_indices(50_000, (1000, 0), seed=0)[0]
    def make() -> BatchIterator:
        return BatchIterator(cifar_train.images, cifar_train.labels, 64, indices=indices, seed=11,
                             transform=BatchAugment().train)

    reference = _collect(make().take(40))  # 16 batches per epoch (last one has 40 images)
    first = make()
    head = _collect(first.take(stop))
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = make()
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert (resumed.epoch, resumed.position) == divmod(stop, 16)
    rest_of_epoch = _collect(resumed)
    assert len(rest_of_epoch) == 16 - stop % 16
    tail = _collect(resumed.take(40 - stop - len(rest_of_epoch)))
    assert _same(head + rest_of_epoch + tail, reference)


def test_epochs_cover_every_sample_once(cifar_train: ImageTensors) -> None:
    indices = torch.arange(0, 50_000, 50)
    it = BatchIterator(cifar_train.images, cifar_train.labels, 64, indices=indices, seed=0)
    assert len(it) == 16
    epochs = [torch.cat([y for _, y in it]) for _ in range(2)]
    expected = torch.sort(cifar_train.labels[indices]).values
    assert all(torch.equal(torch.sort(e).values, expected) for e in epochs)
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled
    assert it.epoch == 2 and it.position == 0
    x, y = next(iter(BatchIterator(cifar_train.images, cifar_train.labels, 8, indices=indices,
                                   order="sequential")))
    assert torch.equal(x, cifar_train.images[indices[:8]]) and x.dtype == torch.uint8
    assert torch.equal(y, cifar_train.labels[indices[:8]])
    dropped = BatchIterator(cifar_train.images, cifar_train.labels, 64, indices=indices,
                            drop_last=True)
    assert len(dropped) == 15 and all(len(y) == 64 for _, y in dropped)


def test_fixed_order_is_identical_across_iterators_and_epochs(cifar_train: ImageTensors) -> None:
    indices = split_indices(50_000, (640, 0), seed=0)[0]
    def make() -> BatchIterator:
        return BatchIterator(cifar_train.images, cifar_train.labels, 64, indices=indices,
                             order="fixed", seed=5, transform=BatchAugment().eval)

    a, b = make(), make()
    first, second = _collect(a.take(20)), _collect(b.take(20))
    assert _same(first, second)
    assert _same(first[:10], first[10:])  # same order every epoch, no augmentation randomness
    assert first[0][0].dtype == torch.float32
    assert len(set(first[0][1].tolist())) > 3  # class-mixed although the data is stored by class


def test_batch_iterator_errors(cifar_train: ImageTensors) -> None:
    images, labels = cifar_train.images, cifar_train.labels
    with pytest.raises(SpeedyNASError, match="order"):
        BatchIterator(images, labels, 64, order="random")
    with pytest.raises(SpeedyNASError, match="batch_size"):
        BatchIterator(images, labels, 0)
    with pytest.raises(SpeedyNASError, match="indices must lie"):
        BatchIterator(images, labels, 4, indices=[50_000])
    state = BatchIterator(images, labels, 64, seed=1).state_dict()
    with pytest.raises(SpeedyNASError, match="seed=1"):
        BatchIterator(images, labels, 64, seed=2).load_state_dict(state)


def test_batches_use_one_thread_and_restore_the_setting(cifar_train: ImageTensors,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def spy(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return x

    before = torch.get_num_threads()
    it = BatchIterator(cifar_train.images, cifar_train.labels, 64, transform=spy)
    assert len(list(it.take(3))) == 3
    assert seen == [1, 1, 1] and torch.get_num_threads() == before


def test_a_named_dataset_with_missing_class_folders_is_refused(tmp_path):
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            shutil.copy(next((CIFAR10_DIR / split / name).glob("*.jpg")), folder / "0.jpg")
    with pytest.raises(SpeedyNASError, match=r"cifar10 has 10 classes but the image folder .*"
                                             r"holds 2 class folders \(cat, dog\)"):
        datasets.load_dataset("cifar10", tmp_path, "train", cache=False)
    assert datasets.load_dataset("imagefolder", tmp_path, "train", cache=False).num_classes == 2
