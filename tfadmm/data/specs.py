"""What tfadmm knows about each named dataset: statistics, pipeline, local copies."""

from __future__ import annotations

import dataclasses


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
    """

    pipeline: str = "generic"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    system_dirs: tuple = ()
    install_hint: str = ""
    train_examples: int | None = None


_IDX_FILES = (
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
)

SPECS = {
    "mnist": DatasetSpec(
        "grayscale", (0.1307,), (0.3081,), ("/usr/share/datasets/mnist",),
        f"put the four IDX files ({_IDX_FILES}) in $TFADMM_DATA_DIR/mnist",
        train_examples=60_000,
    ),
    "fashion_mnist": DatasetSpec(
        "grayscale", (0.2860,), (0.3530,), ("/usr/share/datasets/fashion-mnist",),
        "run `apt-get install dataset-fashion-mnist` (IDX files in "
        f"/usr/share/datasets/fashion-mnist), or put the four IDX files ({_IDX_FILES}) "
        "in $TFADMM_DATA_DIR/fashion_mnist",
        train_examples=60_000,
    ),
    "cifar10": DatasetSpec(
        "cifar", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), (),
        "save x_train, y_train, x_test, y_test (uint8 images, int labels) with "
        "numpy.savez as $TFADMM_DATA_DIR/cifar10.npz, or put an image tree "
        "(train/<class>/*.png, test/<class>/*.png) in $TFADMM_DATA_DIR/cifar10",
        train_examples=50_000,
    ),
    "cifar100": DatasetSpec(
        "cifar", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), (),
        "save x_train, y_train, x_test, y_test (uint8 images, int labels) with "
        "numpy.savez as $TFADMM_DATA_DIR/cifar100.npz, or put an image tree "
        "(train/<class>/*.png, test/<class>/*.png) in $TFADMM_DATA_DIR/cifar100",
        train_examples=50_000,
    ),
    "imagenet2012": DatasetSpec(
        "imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (),
        "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
        "https://image-net.org into {manual_dir} and run "
        "`tfds build imagenet2012 --data_dir {data_dir}`, or put an image tree "
        "(train/<class>/*.JPEG, test/<class>/*.JPEG) in $TFADMM_DATA_DIR/imagenet2012",
        train_examples=1_281_167,
    ),
}

GENERIC = DatasetSpec()

# The input size of datasets whose images vary in size, for the generic pipeline.
GENERIC_SIZE = (224, 224)


def get_spec(name):
    """The `DatasetSpec` of `name`; unknown names get the generic pipeline."""
    return SPECS.get(name, GENERIC)
