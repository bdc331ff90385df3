"""What tfadmm knows about each named dataset: statistics, pipeline, local copies."""

from __future__ import annotations

import dataclasses

import numpy as np

#: Pixel values run from 0 to this; every pipeline first divides by it.
PIXEL_MAX = 255.0


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How a named dataset is preprocessed and where local copies may live.

    Attributes:
        pipeline: "grayscale" (normalise only), "cifar" (pad-4 random crop +
            flip), "imagenet" (random-resized crop 224 + flip; resize 256 +
            center crop 224 for evaluation) or "generic" (resize, scale to [0, 1]).
        mean: per-channel mean of the [0, 1]-scaled training images.
        std: per-channel standard deviation.
        system_dirs: directories a system package installs the data into.
        install_hint: how to get a local copy, for the offline error message.
        train_examples: the size of the training split (None: unknown), for
            checks that need the number of steps per epoch before loading.
        input_shape: the shape of one example (None: unknown), and
        num_classes: the number of classes, so that a model for the dataset can
            be built without loading it.
    """

    pipeline: str = "generic"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    system_dirs: tuple = ()
    install_hint: str = ""
    train_examples: int | None = None
    input_shape: tuple | None = None
    num_classes: int | None = None


_IDX_FILES = (
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
)

SPECS = {
    "mnist": DatasetSpec(
        "grayscale", (0.1307,), (0.3081,), ("/usr/share/datasets/mnist",),
        f"put the four IDX files ({_IDX_FILES}) in $TFADMM_DATA_DIR/mnist",
        train_examples=60_000,
        input_shape=(28, 28, 1), num_classes=10,
    ),
    "fashion_mnist": DatasetSpec(
        "grayscale", (0.2860,), (0.3530,), ("/usr/share/datasets/fashion-mnist",),
        "run `apt-get install dataset-fashion-mnist` (IDX files in "
        f"/usr/share/datasets/fashion-mnist), or put the four IDX files ({_IDX_FILES}) "
        "in $TFADMM_DATA_DIR/fashion_mnist",
        train_examples=60_000,
        input_shape=(28, 28, 1), num_classes=10,
    ),
    "cifar10": DatasetSpec(
        "cifar", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), (),
        "save x_train, y_train, x_test, y_test (uint8 images, int labels) with "
        "numpy.savez as $TFADMM_DATA_DIR/cifar10.npz, or put an image tree "
        "(train/<class>/*.png, test/<class>/*.png) in $TFADMM_DATA_DIR/cifar10",
        train_examples=50_000,
        input_shape=(32, 32, 3), num_classes=10,
    ),
    "cifar100": DatasetSpec(
        "cifar", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), (),
        "save x_train, y_train, x_test, y_test (uint8 images, int labels) with "
        "numpy.savez as $TFADMM_DATA_DIR/cifar100.npz, or put an image tree "
        "(train/<class>/*.png, test/<class>/*.png) in $TFADMM_DATA_DIR/cifar100",
        train_examples=50_000,
        input_shape=(32, 32, 3), num_classes=100,
    ),
    "imagenet2012": DatasetSpec(
        "imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (),
        "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
        "https://image-net.org into {manual_dir} and run "
        "`tfds build imagenet2012 --data_dir {data_dir}`, or put an image tree "
        "(train/<class>/*.JPEG, test/<class>/*.JPEG) in $TFADMM_DATA_DIR/imagenet2012",
        train_examples=1_281_167,
        input_shape=(224, 224, 3), num_classes=1000,
    ),
}

GENERIC = DatasetSpec()

# The input size of datasets whose images vary in size, for the generic pipeline.
GENERIC_SIZE = (224, 224)


def get_spec(name):
    """The `DatasetSpec` of `name`; unknown names get the generic pipeline."""
    return SPECS.get(name, GENERIC)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """What a pipeline does to pixel values `p` in [0, 255]: `(p / 255 - mean) / std`.

    Attributes:
        mean: per channel, of the [0, 1]-scaled training images (one value:
            every channel).
        std: per channel, likewise.

    Example:
        >>> tfadmm.data.Normalization.of_dataset("fashion_mnist").describe()
        '(pixels / 255 - mean) / std, mean=(0.286,), std=(0.353,)'
    """

    mean: tuple = (0.0,)
    std: tuple = (1.0,)

    @classmethod
    def of_spec(cls, spec):
        """The normalisation of a `DatasetSpec`'s pipeline (the generic one only scales)."""
        if spec.pipeline == "generic":
            return cls()
        return cls(tuple(spec.mean), tuple(spec.std))

    @classmethod
    def of_dataset(cls, name, normalize=True):
        """The normalisation `tfadmm.data.load(name, normalize=normalize)` applies."""
        return cls.of_spec(get_spec(name)) if normalize else cls()

    @property
    def scales_only(self):
        """True when pixels are only divided by 255 (no mean, no std)."""
        return all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)

    def apply(self, pixels, channels):
        """`(pixels / 255 - mean) / std` of float32 `pixels` with `channels` last."""
        pixels = pixels / PIXEL_MAX
        if self.scales_only:
            return pixels
        mean = np.asarray(self.mean * (channels // len(self.mean)), np.float32)
        std = np.asarray(self.std * (channels // len(self.std)), np.float32)
        return (pixels - mean) / std

    def describe(self):
        """One line: the formula and its numbers."""
        if self.scales_only:
            return "pixels / 255 (values in [0, 1])"
        return f"(pixels / 255 - mean) / std, mean={self.mean}, std={self.std}"
