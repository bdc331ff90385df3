"""Reading a TensorFlow Datasets (TFDS) dataset, prepared or downloadable."""

from __future__ import annotations

import os

from tfadmm.data.raw import RawData
from tfadmm.errors import DataError
from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.data (tf.data pipelines)")

# Datasets TFDS cannot download: their archives go into <data_dir>/downloads/manual.
MANUAL = ("imagenet2012",)
# Datasets whose labelled evaluation split is not "test" (ImageNet's "test" has no labels).
TEST_SPLITS = {"imagenet2012": "validation"}


def default_data_dir():
    """TFDS's data directory: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def manual_dir(data_dir):
    """Where TFDS looks for manually downloaded archives (ImageNet)."""
    return os.path.join(data_dir, "downloads", "manual")


class NotPreparedError(DataError):
    """TFDS has no prepared copy and could not build one; `cause` says why."""

    def __init__(self, message, cause):
        super().__init__(message)
        self.cause = cause


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises many kinds for a bad name
        raise DataError(
            f"TFDS has no dataset named '{name}': {error}. Expected a name from "
            "`tfds.list_builders()`, e.g. 'mnist', 'cifar10', 'imagenet2012'."
        ) from None


def _prepare(builder, data_dir):
    """Downloads and prepares `builder` (reads ImageNet's manual archives)."""
    import tensorflow_datasets as tfds

    config = tfds.download.DownloadConfig(manual_dir=manual_dir(data_dir))
    builder.download_and_prepare(download_config=config)


def _count(builder, split, read_split):
    try:
        return builder.info.splits[split].num_examples
    except KeyError:  # split sizes unknown (e.g. tfds.testing.mock_data)
        return int(read_split(split).cardinality())


def load_tfds(name, *, data_dir=None, download=True):
    """Opens `name` from TFDS as `RawData`, preparing it first if needed.

    Args:
        name: a TFDS image-classification dataset with `(image, label)`
            supervised keys.
        data_dir: the TFDS data directory; None: `default_data_dir()`.
        download: prepare the dataset when it is not prepared yet (downloads,
            or reads the manual archives of ImageNet).

    Raises:
        NotPreparedError: not prepared, and preparing it failed or was not allowed.
        DataError: an unknown name or a dataset without image / label.
    """
    data_dir = data_dir or default_data_dir()
    builder = _builder(name, data_dir)
    if not builder.is_prepared():
        if not download:
            raise NotPreparedError(f"TFDS dataset '{name}' is not prepared in {data_dir}.", None)
        try:
            _prepare(builder, data_dir)
        except Exception as error:  # network, manual files, disk, ...
            raise NotPreparedError(
                f"TFDS could not prepare '{name}' in {data_dir}: "
                f"{type(error).__name__}: {error}",
                error,
            ) from error
    info = builder.info
    if not info.supervised_keys:
        raise DataError(
            f"TFDS dataset '{name}' has no supervised (image, label) keys: expected an "
            "image-classification dataset."
        )
    image_key, label_key = info.supervised_keys[:2]
    image_feature = info.features[image_key]
    encoded = name in MANUAL  # large JPEGs: shuffle the bytes, decode after
    decoders = None
    if encoded:
        import tensorflow_datasets as tfds

        decoders = {image_key: tfds.decode.SkipDecoding()}

    def read_split(split):
        return builder.as_dataset(
            split=split, as_supervised=True, shuffle_files=False, decoders=decoders
        )

    test_split = TEST_SPLITS.get(name, "test")
    if info.splits and test_split not in info.splits:
        test_split = "validation"
    splits = {"train": "train", "test": test_split}

    def read(split, start, stop):
        ds = read_split(f"{splits[split]}[{start}:{stop}]")
        # TFDS mock data ignores slicing; `take` keeps the sizes right there.
        return ds.take(stop - start).map(lambda x, y: (x, tf.cast(y, tf.int64)))

    def decode(image):
        if encoded:
            image = tf.io.decode_image(image, channels=3, expand_animations=False)
        return tf.ensure_shape(image, (None, None, image_feature.shape[-1]))

    num_classes = info.features[label_key].num_classes
    return RawData(
        num_train=_count(builder, splits["train"], read_split),
        num_test=_count(builder, splits["test"], read_split),
        num_classes=int(num_classes),
        image_shape=tuple(image_feature.shape),
        read=read,
        decode=decode,
        origin=f"TFDS '{name}' in {data_dir}",
    )
