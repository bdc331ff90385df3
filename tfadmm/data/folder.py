"""Reading an image directory tree: one sub-folder per class.

Either `root/train/<class>/*` and `root/test/<class>/*`, or a single tree
`root/<class>/*`. A single tree holds out a `validation_split` fraction as its
test split; the validation split is then taken from the rest, as for any source.
"""

from __future__ import annotations

import pathlib

import numpy as np

from tfadmm.data.raw import RawData
from tfadmm.errors import DataError
from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.data (tf.data pipelines)")

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _class_dirs(root):
    return sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir())


def _images(directory):
    return sorted(
        str(p) for p in directory.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
    )


def is_image_tree(root):
    """Whether `root` looks like an image tree (class folders, or train/ and test/)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        return False
    if (root / "train").is_dir():
        return True
    classes = _class_dirs(root)
    return bool(classes) and any(_images(c) for c in classes[:3])


def _list(root, classes):
    files, labels = [], []
    for index, name in enumerate(classes):
        directory = root / name
        found = _images(directory) if directory.is_dir() else []
        files += found
        labels += [index] * len(found)
    # A fixed permutation: classes are mixed before any slicing, the same on every run.
    order = np.random.default_rng(0).permutation(len(files))
    return [files[i] for i in order], np.asarray(labels, np.int64)[order]


def load_folder(root, *, validation_split=0.1):
    """Lists an image tree into `RawData`; images are decoded lazily.

    Raises:
        DataError: no class folders, no images, or a single tree with
            `validation_split=0` (nothing would be left to evaluate on).
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise DataError(f"Image folder not found: expected a directory. Received: {root}")
    split_tree = (root / "train").is_dir()
    train_root = root / "train" if split_tree else root
    classes = [p.name for p in _class_dirs(train_root)]
    if not classes:
        raise DataError(
            f"No class folders in {train_root}: expected one sub-folder of images per class."
        )
    files, labels = _list(train_root, classes)
    if not files:
        raise DataError(
            f"No images in {train_root}: expected files ending in {', '.join(EXTENSIONS)} "
            f"inside the class folders ({', '.join(classes)})."
        )
    if split_tree:
        if not (root / "test").is_dir():
            raise DataError(f"{root} has a train/ folder but no test/ folder next to it.")
        test_files, test_labels = _list(root / "test", classes)
        train = (files, labels)
    else:
        if not validation_split:
            raise DataError(
                f"{root} is a single image tree: it needs validation_split > 0 to hold "
                f"out evaluation data. Received: validation_split={validation_split!r}"
            )
        held = max(1, round(len(files) * validation_split))
        train = (files[:-held], labels[:-held])
        test_files, test_labels = files[-held:], labels[-held:]
    splits = {"train": train, "test": (test_files, test_labels)}

    first = tf.io.decode_image(tf.io.read_file(files[0]), expand_animations=False)
    channels = int(first.shape[-1])

    def read(split, start, stop):
        paths, ys = splits[split]
        return tf.data.Dataset.from_tensor_slices(
            (tf.constant(paths[start:stop], tf.string), ys[start:stop])
        )

    def decode(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return tf.ensure_shape(image, (None, None, channels))

    return RawData(
        num_train=len(train[0]),
        num_test=len(test_files),
        num_classes=len(classes),
        image_shape=tuple(int(d) for d in first.shape),
        read=read,
        decode=decode,
        origin=f"image folder {root}" + ("" if split_tree else " (single tree)"),
    )
