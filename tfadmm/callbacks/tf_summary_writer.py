"""`TensorFlowWriter`: TensorBoard event files written by `tf.summary`."""

from __future__ import annotations

from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.callbacks.ADMMTensorBoard (tf.summary)")


class TensorFlowWriter:
    """A `tf.summary` file writer for `log_dir`; what `ADMMTensorBoard` writes with where
    TensorFlow is installed. The same methods as `EventWriter`."""

    def __init__(self, log_dir):
        self._writer = tf.summary.create_file_writer(str(log_dir))

    def write_layout(self, layout):
        """Writes a custom-scalars `layout_pb2.Layout` (step 0)."""
        from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary

        summary = custom_scalar_summary.pb(layout)
        with self._writer.as_default():
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=0)

    def scalars(self, values, step):
        """Writes `{tag: number}` at `step`."""
        with self._writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def histogram(self, tag, values, step):
        """Writes a histogram of the array `values`."""
        with self._writer.as_default(step=step):
            tf.summary.histogram(tag, values)

    def text(self, tag, text, step):
        """Writes a Markdown text."""
        with self._writer.as_default(step=step):
            tf.summary.text(tag, text)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
