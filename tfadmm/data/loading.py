"""`tfadmm.data.load`: one call from a dataset name to train / validation / test pipelines."""

from __future__ import annotations

import dataclasses
import pathlib

from tfadmm import lazy_tensorflow
from tfadmm.data import tfds_source
from tfadmm.data.array_pipeline import build_array_splits
from tfadmm.data.folder import load_folder
from tfadmm.data.idx import load_idx
from tfadmm.data.locate import candidates, detect_format, find_local, offline_error
from tfadmm.data.npz import load_npz
from tfadmm.data.pipeline import build_splits, check_arguments
from tfadmm.data.specs import get_spec
from tfadmm.errors import DataError

SOURCES = ("auto", "tfds", "idx", "npz", "folder")


def _read_local(source, path, validation_split):
    if source == "idx":
        return load_idx(path)
    if source == "npz":
        return load_npz(path)
    lazy_tensorflow.load(f"tfadmm.data.load from an image folder ({path}: decoding images)")
    return load_folder(path, validation_split=validation_split)


def _read_tfds(name, spec, data_dir, feature):
    lazy_tensorflow.load(feature)
    try:
        return tfds_source.load_tfds(name, data_dir=data_dir)
    except tfds_source.NotPreparedError as error:
        raise offline_error(name, spec, data_dir=data_dir, cause=error) from error.cause


def _read(name, spec, source, path, validation_split):
    if source in ("idx", "npz", "folder"):
        if path is None:
            raise DataError(
                f"source={source!r} needs `path`: the {source} location of '{name}'. "
                "Received: path=None"
            )
        if not pathlib.Path(path).exists():
            raise DataError(
                f"Dataset path not found for source={source!r}. Received: path={str(path)!r}"
            )
        return _read_local(source, path, validation_split)
    if source == "tfds":
        data_dir = str(path or tfds_source.default_data_dir())
        return _read_tfds(name, spec, data_dir, "tfadmm.data.load from TFDS (source='tfds')")

    # auto: an explicit path, $TFADMM_DATA_DIR/<name>, system dirs, then TFDS.
    data_dir = None
    if path is not None:
        detected = detect_format(path)
        if detected is None:
            raise DataError(
                f"Cannot tell what {str(path)!r} holds for dataset '{name}': expected a .npz "
                "file, a directory of IDX files, an image tree (train/<class>/..., "
                "test/<class>/...) or a TFDS data_dir. Received: path="
                f"{str(path)!r}"
            )
        if detected != "tfds":
            return _read_local(detected, path, validation_split)
        data_dir = str(path)
    else:
        local, local_path = find_local(name, spec)
        if local is not None:
            return _read_local(local, local_path, validation_split)
    data_dir = data_dir or tfds_source.default_data_dir()
    looked = ", ".join(str(p) for p in candidates(name, spec)) or "(no local directory to look in)"
    return _read_tfds(
        name, spec, data_dir,
        f"tfadmm.data.load('{name}') from TFDS (no IDX, .npz or image-folder copy found "
        f"locally; looked in: {looked})" if path is None else
        f"tfadmm.data.load('{name}') from the TFDS data_dir {str(path)!r}",
    )


def load(
    name,
    *,
    source="auto",
    path=None,
    batch_size=128,
    validation_split=0.1,
    take=None,
    seed=0,
    augment=True,
    cache=True,
    normalize=True,
):
    """Loads a dataset as batched train / validation / test pipelines.

    Pipelines follow the papers: MNIST and Fashion-MNIST normalised with their
    mean / std; CIFAR-10/100 per-channel mean / std, training with a pad-4
    random crop and horizontal flip; ImageNet training with a random-resized
    224 crop and flip, evaluation with resize-256 + center-crop-224 (ImageNet
    mean / std); any other TFDS name is resized when its images vary in size
    (to 224x224) and scaled to [0, 1]. The validation split is the last
    `validation_split` of the training data, taken before shuffling; the
    training split is shuffled with `seed`, and augmentation draws from `seed`
    too, so two loads with the same arguments yield the same batches.

    Args:
        name: "mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet2012",
            or any TFDS image-classification dataset name.
        source: "auto" (a local copy if one is found, else TFDS), "tfds",
            "idx" (MNIST-format files), "npz" (`x_train, y_train, x_test,
            y_test`) or "folder" (one sub-folder per class, with `train/`
            and `test/` sub-trees or a single tree).
        path: the local file or directory; for "tfds", the TFDS data_dir.
            With "auto", searched: `path`, `$TFADMM_DATA_DIR/<name>` (or
            `<name>.npz`), `/usr/share/datasets/<name>` (Debian), then TFDS.
        batch_size: examples per batch.
        validation_split: fraction of the training data held out, in [0, 1).
        take: use only this many training examples (validation and test
            shrink in proportion): for tests and smoke runs.
        seed: seeds shuffling and augmentation.
        augment: apply the training augmentation (CIFAR, ImageNet).
        normalize: standardise with the dataset's mean / std (the papers');
            False only scales pixels to [0, 1], for a model trained that way.
        cache: cache decoded images in memory when they fit (2 GiB).

    Returns:
        `tfadmm.data.Splits`; `x` batches are float32 NHWC, `y` int64. The
        splits are tf.data pipelines where TensorFlow is installed; without it
        (Keras' JAX backend), IDX files, `.npz` files and arrays come as
        `keras.utils.PyDataset`s (`tfadmm.data.ArrayBatches`) with the same
        examples, normalisation and CIFAR augmentation, shuffled by numpy.

    Raises:
        MissingDependencyError: TensorFlow is not installed and the data needs it
            (TFDS, image folders, the ImageNet pipeline).
        DataError: an unknown source, a missing or malformed local copy, an
            argument out of range, or no copy at all offline (the message says
            what to install or download and where to put it).

    Example:
        >>> splits = tfadmm.data.load("fashion_mnist", take=512, batch_size=64)
        >>> model.fit(splits.train, validation_data=splits.validation)
    """
    if source not in SOURCES:
        raise DataError(
            f"Invalid `source`: expected one of {', '.join(map(repr, SOURCES))}. "
            f"Received: source={source!r}"
        )
    if not isinstance(name, str) or not name:
        raise DataError(f"Invalid `name`: expected a dataset name. Received: name={name!r}")
    check_arguments(batch_size, validation_split, take, seed)
    if not isinstance(normalize, bool):
        raise DataError(
            f"Invalid `normalize`: expected a boolean. Received: normalize={normalize!r}"
        )
    spec = get_spec(name)
    if not normalize:
        spec = dataclasses.replace(spec, mean=(0.0,), std=(1.0,))
    raw = _read(name, spec, source, path, validation_split)
    if raw.arrays is not None and not lazy_tensorflow.available():
        return build_array_splits(
            raw, spec, name=name, batch_size=batch_size, validation_split=validation_split,
            take=take, seed=seed, augment=augment,
        )
    lazy_tensorflow.load("tfadmm.data.load (tf.data pipelines)")
    return build_splits(
        raw,
        spec,
        name=name,
        batch_size=batch_size,
        validation_split=validation_split,
        take=take,
        seed=seed,
        augment=augment,
        cache=cache,
    )
