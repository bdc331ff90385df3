"""`Splits`: the train / validation / test pipelines of one dataset."""

from __future__ import annotations

import dataclasses

from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.data (tf.data pipelines)")


@dataclasses.dataclass(frozen=True)
class Splits:
    """The batched pipelines `tfadmm.data.load` returns.

    `tf.data.Dataset`s where TensorFlow is installed; `tfadmm.data.ArrayBatches`
    (`keras.utils.PyDataset`s) without it. Every dataset yields `(x, y)` batches:
    `x` float32 NHWC, normalised the way the papers train (see `tfadmm.data.load`),
    `y` int64 class indices.

    Attributes:
        train: shuffled, augmented training batches.
        validation: held-out training examples, evaluated like `test`; None
            when `validation_split=0`.
        test: the dataset's test split.
        num_classes: number of classes (labels are `0 .. num_classes - 1`).
        input_shape: `(height, width, channels)` of one example of `x`.
        name: the dataset's name.
        num_examples: examples per split, `{"train": .., "validation": .., "test": ..}`.
        origin: where the examples were read from, for logs and reports.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    num_classes: int
    input_shape: tuple
    name: str
    num_examples: dict = dataclasses.field(default_factory=dict)
    origin: str = ""
    make_train: object = dataclasses.field(default=None, compare=False, repr=False)

    def train_for_seed(self, seed):
        """A fresh training pipeline whose order and augmentation depend on `seed` only.

        A resumable run asks for one per epoch with a seed that names the epoch,
        so that a resumed epoch sees exactly the batches of an uninterrupted one.
        """
        if self.make_train is None:
            return self.train
        return self.make_train(seed)
