"""The private Keras APIs tfadmm uses are all there (an upgrade that drops one fails here)."""

import keras

from tfadmm import keras_private


def test_every_private_keras_api_tfadmm_uses_exists():
    keras_private.check()


def test_the_check_names_what_a_keras_lacks(monkeypatch):
    monkeypatch.delattr(keras.layers.Layer, "_flatten_layers")
    try:
        keras_private.check()
    except RuntimeError as error:
        assert str(error) == (
            f"This Keras ({keras.__version__}) lacks private APIs tfadmm relies on: "
            "keras.Layer._flatten_layers. Expected the Keras 3 versions tfadmm is tested with "
            "(pyproject.toml)."
        )
    else:
        raise AssertionError("check() passed without keras.Layer._flatten_layers")


def test_no_other_module_reaches_into_private_keras():
    import pathlib
    import re

    root = pathlib.Path(keras_private.__file__).parent
    private = re.compile(r"keras\.src|\._(flatten_layers|seed_generators|loss_tracker|"
                         r"maybe_symbolic_build)\b")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "keras_private.py" and private.search(p.read_text())]
    assert offenders == []
