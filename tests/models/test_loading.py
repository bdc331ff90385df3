import sys

import keras
import pytest

import tfadmm
from tfadmm.errors import ModelError


def test_loads_a_keras_file(tmp_path):
    path = tmp_path / "m.keras"
    tfadmm.models.get("lenet5").save(path)
    model = tfadmm.models.load(path)
    assert model.count_params() == 431_080


def test_missing_file(tmp_path):
    path = tmp_path / "missing.keras"
    with pytest.raises(ModelError) as info:
        tfadmm.models.load(str(path))
    assert str(info.value) == (
        f"Model file not found: expected an existing .keras file. Received: {path}"
    )


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.keras"
    path.write_text("not a zip")
    with pytest.raises(ModelError, match=rf"^Cannot load model file {path}: "):
        tfadmm.models.load(str(path))


def test_module_function(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import keras\n"
        "def small():\n"
        "    inputs = keras.Input((4,))\n"
        "    return keras.Model(inputs, keras.layers.Dense(2, name='fc')(inputs))\n"
        "def not_a_model():\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    assert isinstance(tfadmm.models.load("my_models:small"), keras.Model)
    with pytest.raises(ModelError) as info:
        tfadmm.models.load("my_models:not_a_model")
    assert str(info.value) == (
        "Model reference 'my_models:not_a_model' must return a keras.Model. Received: int"
    )
    with pytest.raises(ModelError) as info:
        tfadmm.models.load("my_models:nothing")
    assert str(info.value) == (
        "Model reference 'my_models:nothing': module 'my_models' has no function 'nothing'."
    )


def test_invalid_spec():
    with pytest.raises(ModelError) as info:
        tfadmm.models.load("model.h5")
    assert str(info.value) == (
        "Invalid model spec: expected a path ending in .keras or 'package.module:function'. "
        "Received: 'model.h5'"
    )
