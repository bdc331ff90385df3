"""`EventWriter`: TensorBoard event files written by tensorboard's own writer, no TensorFlow.

What `ADMMTensorBoard` writes with where TensorFlow is not installed (Keras' JAX
backend). The summaries are those `tf.summary` writes (a float32 scalar tensor, a
`[buckets, 3]` histogram tensor, a string tensor for text, each with its plugin's
metadata), so TensorBoard shows them alike.
"""

from __future__ import annotations

import os
import time
import types

from tfadmm.errors import MissingDependencyError


def _tensorboard():
    """The tensorboard modules the writer needs, imported at first use.

    Raises:
        MissingDependencyError: tensorboard is not installed.
    """
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
        from tensorboard.plugins.histogram import summary as histogram_summary
        from tensorboard.plugins.scalar import summary as scalar_summary
        from tensorboard.plugins.text import summary as text_summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util
    except ImportError as error:
        raise MissingDependencyError(
            "TensorBoard logging without TensorFlow needs the tensorboard package. Expected an "
            f"importable `tensorboard` (pip install tensorboard). Received: {error}"
        ) from error
    return types.SimpleNamespace(
        event_pb2=event_pb2, summary_pb2=summary_pb2,
        custom_scalar_metadata=custom_scalar_metadata, histogram=histogram_summary,
        scalar=scalar_summary, text=text_summary, EventFileWriter=EventFileWriter,
        tensor_util=tensor_util,
    )


class EventWriter:
    """One event file in `log_dir`, written with `tensorboard`'s `EventFileWriter`.

    The same methods as `TensorFlowWriter`; steps are given with each write.
    """

    def __init__(self, log_dir):
        self._tb = _tensorboard()
        self._writer = self._tb.EventFileWriter(
            str(log_dir), filename_suffix=f".{os.getpid()}.v2"
        )

    def write_summary(self, summary, step):
        """Writes a `summary_pb2.Summary` at `step`."""
        event = self._tb.event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer.add_event(event)

    def write_layout(self, layout):
        """Writes a custom-scalars `layout_pb2.Layout` (step 0), as the plugin's `pb` does."""
        summary = self._tb.summary_pb2.Summary()
        summary.value.add(
            tag=self._tb.custom_scalar_metadata.CONFIG_SUMMARY_TAG,
            metadata=self._tb.custom_scalar_metadata.create_summary_metadata(),
            tensor=self._tb.tensor_util.make_tensor_proto(layout.SerializeToString()),
        )
        self.write_summary(summary, 0)

    def scalars(self, values, step):
        """Writes `{tag: number}` at `step`, as float32 scalars."""
        for tag, value in values.items():
            self.write_summary(self._tb.scalar.scalar_pb(tag, float(value)), step)

    def histogram(self, tag, values, step):
        """Writes a histogram of the array `values` (30 buckets, as `tf.summary.histogram`)."""
        self.write_summary(self._tb.histogram.histogram_pb(tag, values), step)

    def text(self, tag, text, step):
        """Writes a Markdown text."""
        self.write_summary(self._tb.text.text_pb(tag, text), step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
