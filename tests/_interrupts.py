"""Stopping a run part-way, as a crash would: a callback that raises as the n-th `fit` starts."""

import keras


class Interrupted(Exception):
    pass


class InterruptAtFit(keras.callbacks.Callback):
    """Interrupts the run as the `n`-th `fit` (one per epoch) starts."""

    def __init__(self, n):
        super().__init__()
        self.n, self.fits = n, 0

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == self.n:
            raise Interrupted
