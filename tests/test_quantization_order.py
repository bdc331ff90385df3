import keras
import numpy as np
import pytest

import tfadmm
from tests._tiny_models import classifier_data, small_classifier
from tfadmm.held_out import as_batches, loss_and_accuracy

_model, _data = small_classifier, classifier_data


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_each_layer_is_measured_quantized_alone_and_the_model_is_left_as_it_was():
    model, data = _model(), _data()
    before = _weights(model)
    binary = tfadmm.Binary(per_channel=True)

    result = tfadmm.quantization_sensitivity(model, binary, data)

    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (result.base_loss, result.base_accuracy) == loss_and_accuracy(model, as_batches(data))
    assert list(result.loss) == ["conv1", "fc1", "fc2"]
    for name in result.loss:  # brute force: a copy with that one kernel binarised by hand
        copy = keras.models.clone_model(model)
        copy.set_weights(before)
        kernel = copy.get_layer(name).kernel
        w = keras.ops.convert_to_numpy(kernel)
        kernel.assign(np.sign(w) * np.abs(w).mean(axis=tuple(range(w.ndim - 1))))
        want = loss_and_accuracy(copy, as_batches(data))
        assert result.loss[name] == pytest.approx(want[0], rel=1e-5)
        assert result.accuracy[name] == pytest.approx(want[1])


def test_order_ranks_by_the_loss_increase_and_stages_add_the_most_sensitive_last():
    four = tfadmm.Quantize(4)
    result = tfadmm.QuantizationSensitivity(
        four, 1.0, 0.9, {"a": 1.5, "b": 1.1, "c": 2.0, "d": 1.1}, {k: 0.8 for k in "abcd"})

    assert result.order() == ["b", "d", "a", "c"]  # b before d: model order among equals
    assert result.stages(2) == [{"b": four, "d": four}, {"b": four, "d": four, "a": four,
                                                          "c": four}]
    assert [list(s) for s in result.stages(3)] == [["b", "d"], ["b", "d", "a"],
                                                  ["b", "d", "a", "c"]]
    assert [list(s) for s in result.stages(1)] == [["b", "d", "a", "c"]]
    assert result.to_dict()["order"] == ["b", "d", "a", "c"]


def test_layers_already_zero_stay_zero_when_measured():
    model, data = _model(), _data()
    kernel = model.get_layer("fc1").kernel
    w = keras.ops.convert_to_numpy(kernel)
    w[:, ::2] = 0.0
    kernel.assign(w)
    seen = []
    ternary = tfadmm.Ternary()

    class Spy(tfadmm.Ternary):
        def project(self, x, support=None):
            seen.append(np.asarray(support))
            return ternary.project(x, support)

    tfadmm.quantization_sensitivity(model, Spy(), data, layers=["fc1"])
    np.testing.assert_array_equal(seen[0], (w != 0).astype("float32"))


def test_progress_is_one_line_a_layer():
    lines = []
    tfadmm.quantization_sensitivity(_model(), tfadmm.Quantize(4), _data(),
                                    layers=["fc*"], on_progress=lines.append)
    assert [line.split(" (")[0] for line in lines] == [
        "quantization sensitivity 1/2: fc1", "quantization sensitivity 2/2: fc2"]


def test_bad_input_says_what_was_expected():
    model, data = _model(), _data()
    with pytest.raises(ValueError) as info:
        tfadmm.quantization_sensitivity(model, 4, data)
    assert str(info.value) == ("Invalid `constraint`: expected a tfadmm constraint such as "
                               "tfadmm.Quantize(4). Received: constraint=4")
    with pytest.raises(ValueError) as info:
        tfadmm.quantization_sensitivity(model, tfadmm.Quantize(4), None)
    assert str(info.value) == ("Invalid `data`: expected a tf.data dataset of (x, y) batches "
                               "or (x, y) arrays. Received: data=None")
    with pytest.raises(ValueError) as info:
        tfadmm.quantization_sensitivity(model, tfadmm.Quantize(4), data, layers=["conv9"])
    assert str(info.value) == ("Invalid `layers`: the pattern 'conv9' matches no compressible "
                               "layer. Compressible layers: conv1, fc1, fc2")
    result = tfadmm.quantization_sensitivity(model, tfadmm.Quantize(4), data, layers=["fc*"])
    with pytest.raises(ValueError) as info:
        result.stages(3)
    assert str(info.value) == ("Invalid `count`: expected an integer in [1, 2] (the layers "
                               "measured). Received: count=3")
