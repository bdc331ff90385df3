"""Datasets as the papers train on them: `tfadmm.data.load(name) -> Splits`."""

from tfadmm.data.array_batches import ArrayBatches
from tfadmm.data.loading import SOURCES, load
from tfadmm.data.specs import Normalization
from tfadmm.data.splits import Splits

__all__ = ["SOURCES", "ArrayBatches", "Normalization", "Splits", "load"]
