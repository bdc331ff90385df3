"""Model surgery: rebuild a pruned model without its removable filters and channels.

`shrink(model)` returns a smaller dense Keras model whose outputs equal the
input model's (to float round-off). A channel of an activation tensor can go
when nothing downstream can tell it is gone:

- its values reach every consuming Conv / Dense layer (a *terminal*) either
  through an all-zero input slice of that layer's kernel (`ChannelSparsity`;
  the value does not matter), or as a known constant `v` the terminal folds
  into its bias exactly: `bias += v * sum(kernel[..., c, :])` over the kernel's
  spatial taps. That is exact for Dense, for 1x1 convs and for `valid`
  padding; a `same`-padded conv sees zeros, not `v`, in its border taps, so a
  non-zero constant there keeps the channel (unless `exact=False`, which
  folds it anyway and changes the borders' outputs);
- a channel is constant when the Conv / Dense filter that produced it is
  all zero (`FilterSparsity`): its output is `activation(bias)` everywhere.
  BatchNormalization maps a constant `v` to
  `gamma * (v - mean) / sqrt(var + eps) + beta`, a constant, and activations,
  pooling and dropout keep it constant, so a pruned filter followed by BN
  (whose output is then usually non-zero) is folded downstream, not lost;
- channels tied together are kept or removed together: the inputs and output
  of a BatchNormalization, activation or pooling layer (channel for channel),
  of `Add` / `Average` / `Maximum` / `Minimum` (a residual connection: a
  channel goes only if it can go in every joined tensor, the intersection),
  `Concatenate` (at its offset), `DepthwiseConv2D` (output channels follow
  their input channel) and `Flatten` (input channel `c` is every flattened
  position `p * channels + c`, channels fastest).

Model inputs and outputs keep every channel. A removable channel that reaches
a layer the surgery does not know (a `Reshape`, a nested model, ...) raises a
`ModelError` naming the layer instead of guessing.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from tfadmm.errors import ModelError
from tfadmm.keras_private import functional_graph_of, producing_node

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_ELEMENTWISE = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
)
_CONSTANT_KEEPING = (
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.Identity,
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
    keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
)
_ZERO_KEEPING = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D,
                 keras.layers.ZeroPadding3D)
_MERGES = {
    keras.layers.Add: lambda v: np.sum(v, axis=0),
    keras.layers.Average: lambda v: np.mean(v, axis=0),
    keras.layers.Maximum: lambda v: np.max(v, axis=0),
    keras.layers.Minimum: lambda v: np.min(v, axis=0),
}


class _Channels:
    """Union-find over every channel of every tensor, with why a set must stay."""

    def __init__(self):
        self.parent = []
        self.blocked = {}  # root -> reason ("keep", "value" or a layer name)
        self.evidence = set()  # nodes that a pruned kernel touches

    def new(self, count):
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        return np.arange(start, start + count)

    def find(self, node):
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a, b):
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra != rb:
            self.parent[rb] = ra

    def block(self, node, reason):
        self.blocked.setdefault(int(node), reason)


class _Tensor:
    def __init__(self, nodes, const):
        self.nodes = nodes  # channel node ids
        self.const = const  # float64 per channel; nan: not a known constant


def _weights(layer):
    return [keras.ops.convert_to_numpy(w).astype(np.float64) for w in layer.weights]


def _activation(config, values):
    name = config.get("activation")
    if name in (None, "linear"):
        return values
    fn = keras.activations.get(name)
    return _apply(lambda v: keras.ops.convert_to_numpy(fn(v)), values)


def _apply(fn, values):
    """`fn` on the known constants; nan stays nan."""
    known = np.isfinite(values)
    out = np.full_like(values, np.nan)
    if known.any():
        out[known] = np.asarray(fn(values[known][None].astype(np.float32)), np.float64)[0]
    return out


def _graph(model):
    """`[(layer, inputs, outputs)]` of the model's calls in topological order."""
    functional = functional_graph_of(model)
    if functional is None or not getattr(functional, "outputs", None):
        raise ModelError(
            f"Cannot shrink model '{model.name}': expected a Sequential model with an Input "
            f"or a functional model. Received: {type(model).__name__}"
        )
    order, seen, calls = [], set(), {}

    def visit(tensor):
        layer, node = producing_node(tensor)
        if id(node) in seen:
            return
        seen.add(id(node))
        inputs = list(node.input_tensors)
        for x in inputs:
            visit(x)
        if layer.name in calls:
            raise ModelError(
                f"Cannot shrink model '{model.name}': layer '{layer.name}' is called more "
                "than once (a shared layer); expected each layer to be called once."
            )
        calls[layer.name] = layer
        order.append((layer, inputs, list(node.output_tensors)))

    for output in functional.outputs:
        visit(output)
    return functional, order


class _Plan:
    """Which channels go: the analysis of `shrink`, before any layer is rebuilt."""

    def __init__(self, model, exact):
        self.exact = exact
        self.functional, self.calls = _graph(model)
        self.channels = _Channels()
        self.tensors = {}
        self.unknown = {}  # root -> name of an unsupported layer a channel reaches
        for layer, inputs, outputs in self.calls:
            self._visit(layer, inputs, outputs)
        for output in self.functional.outputs:
            for node in self._tensor(output).nodes:
                self.channels.block(node, "keep")
        self.keep = self._decide()

    def _tensor(self, x):
        return self.tensors[id(x)]

    def _fresh(self, x, const=None, block=None):
        count = x.shape[-1] if len(x.shape) >= 2 else 1
        nodes = self.channels.new(count)
        if const is None:
            const = np.full(count, np.nan)
        self.tensors[id(x)] = _Tensor(nodes, np.asarray(const, np.float64))
        if block is not None:
            for node in nodes:
                self.channels.block(node, block)
        return self.tensors[id(x)]

    def _link(self, x, nodes, const):
        """The output `x` shares its channels with `nodes` (one to one)."""
        self.tensors[id(x)] = _Tensor(np.asarray(nodes), np.asarray(const, np.float64))

    def _visit(self, layer, inputs, outputs):
        config = layer.get_config()
        if isinstance(layer, keras.layers.InputLayer):
            self._fresh(outputs[0], block="keep")
            return
        ins = [self._tensor(x) for x in inputs]
        out = outputs[0]
        if isinstance(layer, _CONVS + (keras.layers.Dense,)) and config.get("groups", 1) == 1:
            self._terminal(layer, inputs[0], ins[0])
            kernel = _weights(layer)[0]
            bias = _weights(layer)[1] if layer.use_bias else np.zeros(kernel.shape[-1])
            zero = np.all(kernel.reshape(-1, kernel.shape[-1]) == 0, axis=0)
            const = np.where(zero, _activation(config, bias), np.nan)
            tensor = self._fresh(out, const)
            for node, is_zero in zip(tensor.nodes, zero, strict=True):
                if is_zero:
                    self.channels.evidence.add(int(node))
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            self._depthwise(layer, config, ins[0], out)
        elif isinstance(layer, keras.layers.BatchNormalization) and config["axis"] in (
                -1, len(inputs[0].shape) - 1, [-1], [len(inputs[0].shape) - 1]):
            self._link(out, ins[0].nodes, _batch_norm(layer, ins[0].const))
        elif isinstance(layer, _ELEMENTWISE):
            self._link(out, ins[0].nodes, _apply(
                lambda v: keras.ops.convert_to_numpy(layer(v)), ins[0].const))
        elif isinstance(layer, _CONSTANT_KEEPING) and config.get(
                "data_format", "channels_last") == "channels_last":
            self._link(out, ins[0].nodes, ins[0].const)
        elif isinstance(layer, _ZERO_KEEPING) and config.get(
                "data_format", "channels_last") == "channels_last":
            self._link(out, ins[0].nodes, np.where(ins[0].const == 0, 0.0, np.nan))
        elif type(layer) in _MERGES and all(x.shape[-1] == out.shape[-1] for x in inputs):
            for other in ins[1:]:
                for a, b in zip(ins[0].nodes, other.nodes, strict=True):
                    self.channels.union(a, b)
            self._link(out, ins[0].nodes, _MERGES[type(layer)]([t.const for t in ins]))
        elif isinstance(layer, keras.layers.Concatenate) and config["axis"] in (
                -1, len(out.shape) - 1):
            self._link(out, np.concatenate([t.nodes for t in ins]),
                       np.concatenate([t.const for t in ins]))
        elif isinstance(layer, keras.layers.Flatten) and config.get(
                "data_format", "channels_last") == "channels_last" and (
                None not in inputs[0].shape[1:]):
            positions = math.prod(inputs[0].shape[1:-1])
            self._link(out, np.tile(ins[0].nodes, positions), np.tile(ins[0].const, positions))
        else:
            for tensor in ins:
                for node in tensor.nodes:
                    self.unknown.setdefault(self.channels.find(int(node)), layer.name)
                    self.channels.block(node, layer.name)
            for x in outputs:
                self._fresh(x, block="keep")

    def _terminal(self, layer, x, tensor):
        """A Conv / Dense reading `tensor`: which of its channels it can do without."""
        kernel = _weights(layer)[0]
        slices = np.moveaxis(kernel, -2, 0).reshape(kernel.shape[-2], -1)
        zero = np.all(slices == 0, axis=1)
        geometry = isinstance(layer, keras.layers.Dense) or not self.exact or (
            layer.padding == "valid" or all(k == 1 for k in layer.kernel_size))
        for node, is_zero, value in zip(tensor.nodes, zero, tensor.const, strict=True):
            if is_zero:
                self.channels.evidence.add(int(node))
            elif not (np.isfinite(value) and (value == 0 or geometry)):
                self.channels.block(node, "value")

    def _depthwise(self, layer, config, tensor, out):
        kernel = _weights(layer)[0]  # (kh, kw, channels, multiplier)
        multiplier = kernel.shape[-1]
        bias = _weights(layer)[1].reshape(-1, multiplier) if layer.use_bias else np.zeros(
            kernel.shape[-2:])
        geometry = not self.exact or layer.padding == "valid" or all(
            k == 1 for k in layer.kernel_size)
        taps = kernel.sum(axis=(0, 1))
        value = tensor.const[:, None]
        folded = np.where(np.isfinite(value) & ((value == 0) | geometry),
                          value * taps + bias, np.nan)
        zero = np.all(kernel == 0, axis=(0, 1))
        pre = np.where(zero, bias, folded).reshape(-1)
        self._link(out, np.repeat(tensor.nodes, multiplier), _activation(config, pre))

    def _decide(self):
        """`{tensor id: keep mask}`; raises where an unsupported layer is all that blocks."""
        roots = {}
        for tensor in self.tensors.values():
            for node in tensor.nodes:
                roots.setdefault(self.channels.find(int(node)), []).append(int(node))
        reasons = {}
        for node, reason in self.channels.blocked.items():
            reasons.setdefault(self.channels.find(node), set()).add(reason)
        evident = {self.channels.find(n) for n in self.channels.evidence}
        for root in roots:
            blocked = reasons.get(root, set())
            unsupported = blocked - {"keep", "value"}
            if unsupported and blocked == unsupported and root in evident:
                name = sorted(unsupported)[0]
                raise ModelError(
                    f"Cannot shrink: a pruned channel reaches layer '{name}', which surgery "
                    "cannot slice; expected it to feed only Conv, Dense, DepthwiseConv2D, "
                    "BatchNormalization, activation, pooling, Add, Concatenate or Flatten "
                    "layers (or prune the filters that feed it less)."
                )
        droppable = {root for root in roots if root not in reasons}
        while True:  # every tensor keeps at least one channel
            changed = False
            for tensor in self.tensors.values():
                found = [self.channels.find(int(n)) for n in tensor.nodes]
                if found and all(r in droppable for r in found):
                    droppable.discard(found[0])
                    changed = True
            if not changed:
                break
        return {
            key: np.array([self.channels.find(int(n)) not in droppable for n in t.nodes])
            for key, t in self.tensors.items()
        }


def _batch_norm(layer, values):
    config = layer.get_config()
    weights = iter(_weights(layer))
    gamma = next(weights) if config["scale"] else 1.0
    beta = next(weights) if config["center"] else 0.0
    mean, variance = next(weights), next(weights)
    return gamma * (values - mean) / np.sqrt(variance + config["epsilon"]) + beta


def shrink(model, *, exact=True):
    """Returns a smaller copy of `model` without the filters and channels it does not need.

    Args:
        model: a plain Sequential (with an Input) or functional Keras model,
            e.g. from `tfadmm.strip` after `FilterSparsity` / `ChannelSparsity`.
        exact: True: only remove what leaves every output unchanged (to float
            round-off). False: also fold a pruned filter's non-zero constant
            output into a `same`-padded conv, which changes the outputs near
            the borders (measure the accuracy of the result).

    Returns:
        A new `keras.Model` of the same kind (Sequential stays Sequential) with
        smaller Conv / Dense / DepthwiseConv2D / BatchNormalization layers; the
        input model is not changed.

    Raises:
        ModelError: a model that is not Sequential or functional, a shared
            layer, or a removable channel that reaches a layer surgery does
            not know (named).
    """
    plan = _Plan(model, exact)
    new_weights, configs = {}, {}
    for layer, inputs, outputs in plan.calls:
        if isinstance(layer, keras.layers.InputLayer) or not layer.weights:
            continue
        keep_in = plan.keep[id(inputs[0])]
        keep_out = plan.keep[id(outputs[0])]
        config = layer.get_config()
        weights = _weights(layer)
        if isinstance(layer, _CONVS + (keras.layers.Dense,)) and config.get("groups", 1) == 1:
            kernel = weights[0]
            bias = weights[1] if layer.use_bias else np.zeros(kernel.shape[-1])
            dropped = ~keep_in
            const = np.nan_to_num(plan._tensor(inputs[0]).const)
            taps = kernel.reshape(-1, *kernel.shape[-2:]).sum(axis=0)  # (in, out)
            fold = (const[dropped, None] * taps[dropped]).sum(axis=0)
            bias = (bias + fold)[keep_out]
            kernel = kernel[..., keep_in, :][..., keep_out]
            key = "units" if isinstance(layer, keras.layers.Dense) else "filters"
            config[key] = int(keep_out.sum())
            if not layer.use_bias and np.any(bias != 0):
                config["use_bias"] = True
            weights = [kernel, bias] if config["use_bias"] else [kernel]
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            weights = [weights[0][:, :, keep_in, :]] + (
                [weights[1][keep_out]] if layer.use_bias else [])
        elif isinstance(layer, keras.layers.BatchNormalization):
            weights = [w[keep_in] for w in weights]
        elif not (keep_in.all() and keep_out.all()):
            raise ModelError(  # a layer with weights that _Plan linked without slicing
                f"Cannot shrink: layer '{layer.name}' ({type(layer).__name__}) has weights "
                "that surgery cannot slice."
            )
        configs[layer.name] = config
        new_weights[layer.name] = weights

    def clone(layer):
        config = configs.get(layer.name, layer.get_config())
        return type(layer).from_config(config)

    shrunk = keras.models.clone_model(model, clone_function=clone)
    for layer in shrunk.layers:
        if layer.name in new_weights:
            layer.set_weights([
                w.astype(v.dtype) for w, v in zip(
                    new_weights[layer.name], [np.asarray(x) for x in layer.get_weights()],
                    strict=True)
            ])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return shrunk
