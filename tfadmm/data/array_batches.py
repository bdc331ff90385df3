"""`ArrayBatches`: in-memory images fed to Keras as a `PyDataset`, without TensorFlow."""

from __future__ import annotations

import math

import keras
import numpy as np

#: Seeds are reduced modulo this for numpy's generators (which take non-negative seeds).
_SEED_MODULUS = 2**63


class ArrayBatches(keras.utils.PyDataset):
    """Batches `(x, y)` of uint8 NHWC images, preprocessed one batch at a time.

    What `tfadmm.data.load` returns where TensorFlow is not installed (Keras' JAX
    backend): `x` float32 NHWC as `preprocess` makes it, `y` int64.

    Args:
        images: uint8 array `(N, H, W, C)`.
        labels: int64 array `(N,)`.
        batch_size: examples per batch (the last batch may be smaller).
        preprocess: `preprocess(images, rng) -> float32 images` for one batch;
            `rng` is a `numpy.random.Generator` that depends only on the seed,
            the epoch and the batch index.
        seed: shuffles the examples, differently each epoch (`fit` begins each
            with `on_epoch_begin`); None keeps the stored order.
    """

    def __init__(self, images, labels, *, batch_size, preprocess, seed=None):
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(
                f"ArrayBatches: images and labels differ in count. Received: "
                f"{len(images)} images, {len(labels)} labels."
            )
        self.images, self.labels = images, labels
        self.batch_size = int(batch_size)
        self.preprocess = preprocess
        self.seed = seed
        self.epoch = 0
        self._begun = False
        self._order = self._permutation()

    def _permutation(self):
        if self.seed is None:
            return None
        rng = np.random.default_rng([self.seed % _SEED_MODULUS, self.epoch])
        return rng.permutation(len(self.labels))

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"ArrayBatches has {len(self)} batches: expected an index in "
                f"[0, {len(self)}). Received: {index}"
            )
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self._order is not None:
            rows = self._order[rows]
        seed = 0 if self.seed is None else self.seed % _SEED_MODULUS
        rng = np.random.default_rng([seed, self.epoch, index])
        return self.preprocess(self.images[rows], rng), self.labels[rows]

    def on_epoch_begin(self):
        """Every epoch after the first draws a new order (and new augmentation).

        At the beginning rather than the end: Keras may open the next epoch's
        iterator, and read ahead from it, before it ends an epoch.
        """
        if self._begun:
            self.epoch += 1
            self._order = self._permutation()
        self._begun = True
