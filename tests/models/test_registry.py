import keras
import numpy as np
import pytest

import tfadmm
from tfadmm.compressible import find_compressible_layers
from tfadmm.errors import ModelError
from tfadmm.targets import match_layers


def trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_lenet5_matches_the_papers():
    model = tfadmm.models.get("lenet5")
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
                  if hasattr(layer, "kernel"))
    assert kernels == 430_500
    assert model.count_params() == 431_080
    assert [layer.name for layer in model.layers if hasattr(layer, "kernel")] == [
        "conv1", "conv2", "fc1", "fc2"
    ]
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("resnet18", dict(input_shape=(32, 32, 3)), 11_689_512),  # size-independent
        ("resnet50", dict(input_shape=(32, 32, 3)), 25_557_032),
        ("resnet18_cifar", {}, 11_173_962),
        ("resnet50_cifar", {}, 23_520_842),
        ("mobilenetv2", dict(input_shape=(32, 32, 3)), 3_504_872),
        ("mobilenetv2_cifar", {}, 2_236_682),
        ("vgg16_cifar", {}, 14_987_210),
        ("resnet20", {}, 269_722),  # He et al. 2016: "0.27M"
        ("resnet20", dict(input_shape=(28, 28, 1)), 269_434),
    ],
)
def test_parameter_counts(name, kwargs, expected):
    assert trainable(tfadmm.models.get(name, **kwargs)) == expected


@pytest.mark.slow
def test_vgg16_imagenet_parameter_count():
    assert tfadmm.models.get("vgg16").count_params() == 138_357_544


@pytest.mark.slow
def test_alexnet_imagenet_parameter_count():
    model = tfadmm.models.get("alexnet")
    conv_and_dense = sum(
        int(np.prod(v.shape)) for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense) for v in layer.weights
    )
    assert conv_and_dense == 61_100_840  # torchvision's AlexNet
    assert trainable(model) == 61_100_840 + 2 * (64 + 192 + 384 + 256 + 256)


@pytest.mark.slow
def test_mobilenetv2_matches_keras_applications():
    reference = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    assert trainable(tfadmm.models.get("mobilenetv2")) == trainable(reference)


def test_resnet20_layout():
    model = tfadmm.models.get("resnet20")
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == ["conv1"] + [
        f"conv{s}_block{b}_{i}_conv" for s in (2, 3, 4) for b in (1, 2, 3) for i in (1, 2)
    ]
    kernels = find_compressible_layers(model)
    assert list(kernels) == convs + ["fc"]  # option A: the shortcuts hold no weights
    assert sum(int(np.prod(k["kernel"].shape)) for k in kernels.values()) == 268_336
    assert all(f"{name}_bn" in {layer.name for layer in model.layers} for name in convs)
    assert [tuple(model.get_layer(f"conv{s}_block1_add").output.shape) for s in (2, 3, 4)] == [
        (None, 32, 32, 16), (None, 16, 16, 32), (None, 8, 8, 64)]
    assert match_layers(model, ["conv*_block*"]) == convs[1:]
    assert model.output_shape == (None, 10)


def test_resnet20_shortcut_pads_zero_channels():
    """Option A: the shortcut is the input, subsampled by 2, with zero channels on both sides."""
    model = tfadmm.models.get("resnet20", input_shape=(28, 28, 1))
    before = model.get_layer("conv2_block3_out").output
    shortcut = model.get_layer("conv3_block1_0_from_channels").output
    probe = keras.Model(model.input, [before, shortcut])
    x, s = probe(np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32"))
    x, s = np.asarray(x), np.asarray(s)
    assert s.shape == (2, 14, 14, 32)
    np.testing.assert_array_equal(s[..., 8:24], x[:, ::2, ::2, :])
    assert not s[..., :8].any() and not s[..., 24:].any()


def test_resnet20_saves_and_loads_in_safe_mode(tmp_path):
    model = tfadmm.models.get("resnet20", input_shape=(8, 8, 3), num_classes=4)
    model.save(tmp_path / "r.keras")
    loaded = keras.models.load_model(tmp_path / "r.keras")  # safe mode: no Lambda layer
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


def test_available_and_schedules():
    names = tfadmm.models.available()
    assert names == sorted(names) and {"lenet5", "alexnet", "vgg16", "resnet50"} <= set(names)
    for name in names:
        schedule = tfadmm.models.baseline_schedule(name)
        assert {"dataset", "optimizer", "learning_rate", "epochs", "lr_schedule"} <= set(schedule)
    schedule = tfadmm.models.baseline_schedule("lenet5")
    schedule["epochs"] = 1
    assert tfadmm.models.baseline_schedule("lenet5")["epochs"] == 40


def test_unknown_name_lists_the_zoo():
    with pytest.raises(ModelError) as info:
        tfadmm.models.get("lenet")
    assert str(info.value) == (
        "Unknown model name: expected one of " + ", ".join(tfadmm.models.available())
        + ". Received: name='lenet'"
    )
    with pytest.raises(ModelError):
        tfadmm.models.baseline_schedule("lenet")


def _one_admm_step(model, input_shape, num_classes):
    wrapped = tfadmm.wrap(model, {"*": tfadmm.Sparsity(0.5)})
    wrapped.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.default_rng(0).random((2, *input_shape), dtype=np.float32)
    logs = wrapped.fit(x, np.arange(2) % num_classes, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])


FAST = [("lenet5", (28, 28, 1)), ("resnet18_cifar", (16, 16, 3)), ("resnet20", (28, 28, 1))]
SLOW = [
    ("alexnet", (64, 64, 3)),
    ("vgg16", (32, 32, 3)),
    ("vgg16_cifar", (32, 32, 3)),
    ("resnet18", (32, 32, 3)),
    ("resnet50", (32, 32, 3)),
    ("resnet50_cifar", (16, 16, 3)),
    ("mobilenetv2", (32, 32, 3)),
    ("mobilenetv2_cifar", (16, 16, 3)),
]


@pytest.mark.parametrize(("name", "input_shape"), FAST)
def test_wraps_and_trains(name, input_shape):
    _one_admm_step(tfadmm.models.get(name, input_shape=input_shape, num_classes=10),
                   input_shape, 10)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "input_shape"), SLOW)
def test_wraps_and_trains_slow(name, input_shape):
    _one_admm_step(tfadmm.models.get(name, input_shape=input_shape, num_classes=10),
                   input_shape, 10)


def test_every_zoo_model_is_covered():
    assert {n for n, _ in FAST + SLOW} == set(tfadmm.models.available())
