"""Knowledge distillation: the soft-target loss, `wrap(distill=...)`, saving with a teacher."""

import keras
import numpy as np
import pytest

import tfadmm
from tests._tiny_models import batch, dense_model
from tfadmm.distillation import soft_target_loss


def test_soft_target_loss_is_t_squared_kl_of_the_softened_outputs():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")
    temperature = 3.0

    def softmax(z):
        e = np.exp(z / temperature - (z / temperature).max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(t), softmax(s)
    expected = temperature**2 * np.mean(np.sum(p * np.log(p / q), axis=-1))
    got = float(keras.ops.convert_to_numpy(soft_target_loss(t, s, temperature)))
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(keras.ops.convert_to_numpy(soft_target_loss(t, t, temperature))) == (
        pytest.approx(0.0, abs=1e-6))


def test_probabilities_distill_like_their_logits():
    rng = np.random.default_rng(1)
    t, s = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")
    from_logits = soft_target_loss(t, s, 2.0)
    probs = soft_target_loss(keras.ops.softmax(t), keras.ops.softmax(s), 2.0, from_logits=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_logits),
                               keras.ops.convert_to_numpy(probs), rtol=1e-4)


def _compiled(distill):
    admm = tfadmm.wrap(dense_model(), {"fc*": tfadmm.Sparsity(0.5)}, distill=distill)
    admm.compile(optimizer="sgd",
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return admm


def test_the_training_loss_mixes_in_the_teacher_and_evaluation_does_not():
    x, y = batch((6,), rows=8), np.arange(8) % 3
    plain, distilled = _compiled(None), _compiled(tfadmm.Distill(temperature=2.0, alpha=0.5))
    # The student starts as the teacher: the soft term is 0, the loss half the plain one.
    pred = plain(x)
    base = float(plain.compute_loss(x, y, pred, training=True))
    assert float(distilled.compute_loss(x, y, pred, training=True)) == pytest.approx(0.5 * base,
                                                                                     rel=1e-5)
    assert float(distilled.compute_loss(x, y, pred, training=False)) == pytest.approx(base)


def test_a_model_with_a_teacher_saves_and_continues_exactly(tmp_path):
    x, y = batch((6,), rows=64), np.arange(64) % 3
    admm = _compiled(tfadmm.Distill(temperature=2.0, alpha=0.5))
    admm.fit(x, y, batch_size=16, epochs=1, verbose=0)
    admm.save(tmp_path / "mid.keras")
    loaded = keras.models.load_model(tmp_path / "mid.keras")
    assert loaded.distill.get_config() == admm.distill.get_config()
    for a, b in zip(loaded.teacher.get_weights(), admm.teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    admm.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), admm.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_distillation_settings_are_refused():
    with pytest.raises(ValueError) as info:
        tfadmm.Distill(temperature=0)
    assert str(info.value) == (
        "Invalid `temperature`: expected a number > 0. Received: temperature=0")
    with pytest.raises(ValueError) as info:
        tfadmm.Distill(alpha=1.5)
    assert str(info.value) == "Invalid `alpha`: expected a number in [0, 1]. Received: alpha=1.5"
    with pytest.raises(ValueError) as info:
        tfadmm.wrap(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, distill=0.5)
    assert str(info.value) == (
        "Invalid `distill`: expected a tfadmm.Distill or None. Received: 0.5")
