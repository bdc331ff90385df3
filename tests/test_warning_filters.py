"""A DeprecationWarning raised by tfadmm's own code fails the tests (pyproject filterwarnings);
one raised inside a dependency stays quiet."""

import warnings

import pytest


def _warn_from(module):
    warnings.warn_explicit("old API", DeprecationWarning, f"{module.replace('.', '/')}.py", 1,
                           module=module, registry={})


def test_a_deprecation_warning_from_tfadmm_is_an_error():
    with pytest.raises(DeprecationWarning, match="old API"):
        _warn_from("tfadmm.stage")


def test_a_deprecation_warning_from_a_dependency_is_ignored():
    _warn_from("keras.src.saving")
