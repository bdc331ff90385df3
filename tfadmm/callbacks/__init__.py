"""Keras callbacks for ADMM training."""

from tfadmm.callbacks.tensorboard import ADMMTensorBoard

__all__ = ["ADMMTensorBoard"]
