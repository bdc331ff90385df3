"""`tfadmm.run_stage`: the one stage engine (ADMM, mapping, retraining, best candidate)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfadmm
from tests._tiny_models import dense_model
from tfadmm.stage import (
    DEFAULT_RHO_FINAL,
    StageMonitor,
    outputs_logits,
    phase_multiplier,
    phase_updates,
)


def _data(rows=192, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(32)


class _Recorder(StageMonitor):
    def __init__(self):
        self.events, self.candidates = [], []

    def epoch_begin(self, model, phase, epoch, epochs):
        self.events.append((phase, epoch))

    def best_changed(self, candidate):
        self.candidates.append(candidate)


def _stage(keep_best=True, **kwargs):
    keras.utils.set_random_seed(0)
    monitor = _Recorder()
    result = tfadmm.run_stage(
        dense_model(), {"fc*": tfadmm.Sparsity(0.8)}, _data(), validation=_data(64, seed=1),
        admm=tfadmm.ADMMPhase(epochs=2, update_every_steps=3),
        retrain=tfadmm.RetrainPhase(epochs=3, keep_best=keep_best), monitor=monitor, **kwargs)
    return result, monitor


def test_a_stage_runs_admm_then_retraining_and_ends_inside_the_sets():
    result, monitor = _stage()
    assert monitor.events == [("admm", 0), ("admm", 1), ("retrain", 0), ("retrain", 1),
                              ("retrain", 2)]
    assert result.model.phase == "retrain" and tfadmm.fully_mapped(result.model)
    plain = tfadmm.strip(result.model)
    for name, size in (("fc1", 6 * 32), ("fc2", 32 * 3)):
        kernel = keras.ops.convert_to_numpy(plain.get_layer(name).kernel)
        assert np.count_nonzero(kernel) == size - int(0.8 * size)


def test_keep_best_ends_on_the_best_candidate_by_validation_with_its_weights():
    result, monitor = _stage()
    best = monitor.candidates[-1]
    labels = [c.label for c in monitor.candidates]
    assert labels[0] == "start" and set(labels) <= {"start", "mapped", "retrain epoch 1",
                                                  "retrain epoch 2", "retrain epoch 3"}
    assert result.chosen == best.label
    assert result.val_accuracy == best.val_accuracy == max(c.val_accuracy
                                                            for c in monitor.candidates)
    for got, expected in zip(result.model.get_weights(), best.weights, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_without_keep_best_the_stage_ends_on_its_last_epoch():
    result, monitor = _stage(keep_best=False)
    assert result.chosen == "last" and monitor.candidates == []
    assert result.start_val_accuracy is not None  # still measured, for the report


def test_the_start_candidate_is_the_hard_mapped_model_before_any_training():
    result, _ = _stage()
    model = dense_model()
    keras.utils.set_random_seed(0)
    mapped = tfadmm.strip(tfadmm.project(tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.8)})))
    tfadmm.stage.compile_classifier(mapped, "adam")
    expected = mapped.evaluate(_data(64, seed=1), verbose=0, return_dict=True)["accuracy"]
    assert result.start_val_accuracy == pytest.approx(expected)


def test_a_stage_with_distillation_keeps_its_teacher_fixed():
    result, _ = _stage(distill=tfadmm.Distill(temperature=2.0, alpha=0.7))
    teacher = result.model.teacher
    assert teacher is not None and not teacher.trainable
    original = dense_model()
    for got, expected in zip(teacher.get_weights(), original.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_auto_distill_distills_unstructured_pruning_below_100x_only():
    model = dense_model()  # fc1: 192 weights, fc2: 96
    assert tfadmm.auto_distill(model, {"fc*": tfadmm.Sparsity(0.8)})  # 5x
    # 288 weights, one kept in each kernel: 144x.
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.Sparsity(0.995)})
    # fc1 keeps 2, fc2 keeps 1: 96x.
    assert tfadmm.auto_distill(model, {"fc1": tfadmm.Sparsity(0.99),
                                          "fc2": tfadmm.Sparsity(0.995)})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.FilterSparsity(0.5)})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.Sparsity(0.5) & tfadmm.Quantize(4)})


def test_auto_distill_distills_quantization_to_3_bits_or_more_only():
    model = dense_model()
    assert tfadmm.auto_distill(model, {"fc*": tfadmm.Quantize(4)})
    assert tfadmm.auto_distill(model, {"fc*": tfadmm.Quantize(3, per_channel=True)})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.Quantize(2)})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.Ternary()})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.Binary()})
    assert not tfadmm.auto_distill(model, {"fc*": tfadmm.PowerOfTwo(4)})
    assert not tfadmm.auto_distill(model, {"fc1": tfadmm.Binary(), "fc2": tfadmm.Quantize(8)})
    # Quantized layers do not count towards the pruning rate: fc1 alone at 5x, then 192x.
    assert tfadmm.auto_distill(model, {"fc1": tfadmm.Sparsity(0.8), "fc2": tfadmm.Quantize(4)})
    assert not tfadmm.auto_distill(model, {"fc1": tfadmm.Sparsity(0.995),
                                           "fc2": tfadmm.Quantize(4)})


def test_the_default_distill_auto_follows_auto_distill():
    distilled, _ = _stage()  # Sparsity(0.8): 5x
    assert distilled.model.teacher is not None
    plain, _ = _stage(distill=None)
    assert plain.model.teacher is None
    keras.utils.set_random_seed(0)
    high = tfadmm.run_stage(dense_model(), {"fc*": tfadmm.Sparsity(0.995)}, _data(),
                            admm=tfadmm.ADMMPhase(epochs=1), retrain=tfadmm.RetrainPhase(epochs=1))
    assert high.model.teacher is None


def test_bad_phase_settings_are_refused():
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(),
                         admm=tfadmm.ADMMPhase(epochs=-1))
    assert str(info.value) == "Invalid `admm.epochs`: expected an integer >= 0. Received: -1"
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(), retrain={})
    assert str(info.value) == "Invalid `retrain`: expected a tfadmm.RetrainPhase. Received: {}"
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(), distill="on")
    assert str(info.value) == ("Invalid `distill`: expected a tfadmm.Distill, None or 'auto'. "
                               "Received: distill='on'")


def _bn_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((6,), name="features"),
        keras.layers.Dense(32, name="fc1"),
        keras.layers.BatchNormalization(name="fc1_bn"),
        keras.layers.Activation("relu"),
        keras.layers.Dense(3, name="fc2"),
    ], name="tiny_bn")


class _BatchNormAtMapping(StageMonitor):
    def mapped(self, model):
        self.weights = model.get_weights()


@pytest.mark.parametrize("recalibrate", [False, True])
def test_recalibrate_bn_re_estimates_batch_norms_before_start_and_mapped(recalibrate):
    train, val = _data(), _data(64, seed=1)
    monitor = _BatchNormAtMapping()
    result = tfadmm.run_stage(
        _bn_model(), {"fc*": tfadmm.Sparsity(0.8)}, train, validation=val,
        admm=tfadmm.ADMMPhase(epochs=1, update_every_steps=3),
        retrain=tfadmm.RetrainPhase(epochs=1, recalibrate_bn=recalibrate), monitor=monitor)
    # `mapped`: the statistics are those of the mapped weights on the training data.
    result.model.set_weights(monitor.weights)
    bn = result.model.model.get_layer("fc1_bn")
    before = [np.array(v) for v in (bn.moving_mean, bn.moving_variance)]
    tfadmm.recalibrate_batchnorm(result.model, train, steps=200)
    after = [np.array(v) for v in (bn.moving_mean, bn.moving_variance)]
    same = all(np.allclose(b, a, rtol=1e-5, atol=1e-6) for b, a in zip(before, after,
                                                                       strict=True))
    assert same == recalibrate
    # `start`: the hard-mapped model, recalibrated (or not) before it is evaluated.
    mapped = tfadmm.project(tfadmm.wrap(_bn_model(), {"fc*": tfadmm.Sparsity(0.8)}))
    if recalibrate:
        tfadmm.recalibrate_batchnorm(mapped, train)
    plain = tfadmm.stage.compile_classifier(tfadmm.strip(mapped), "adam")
    expected = plain.evaluate(val, verbose=0, return_dict=True)["accuracy"]
    assert result.start_val_accuracy == pytest.approx(expected)


def test_recalibrate_bn_must_be_a_bool():
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(),
                         retrain=tfadmm.RetrainPhase(recalibrate_bn="yes"))
    assert str(info.value) == (
        "Invalid `retrain.recalibrate_bn`: expected True or False. Received: 'yes'")


def test_rho_final_grows_rho_to_it_over_the_admm_phase():
    keras.utils.set_random_seed(0)
    result = tfadmm.run_stage(
        dense_model(), {"fc*": tfadmm.Sparsity(0.8)}, _data(),
        admm=tfadmm.ADMMPhase(epochs=2, update_every_steps=3, rho=0.01, rho_final=0.5),
        retrain=tfadmm.RetrainPhase(epochs=1))
    # 6 batches an epoch, 2 epochs, an update every 3 steps: 4 updates.
    assert result.model.rho_multiplier == pytest.approx(50 ** 0.25)
    assert float(keras.ops.convert_to_numpy(result.model.rho)) == pytest.approx(0.5, rel=1e-5)


def test_phase_updates_count_as_the_model_does():
    admm = tfadmm.ADMMPhase(epochs=3, updates_per_epoch=4)
    assert phase_updates(admm, 10) == 3 * 10 // 2  # an update every 10 // 4 = 2 steps
    assert phase_updates(admm, None) == 12
    assert phase_updates(tfadmm.ADMMPhase(epochs=2, update_every_steps=3), 7) == 4
    with pytest.raises(ValueError) as info:
        phase_updates(tfadmm.ADMMPhase(update_every_steps=3, rho_final=0.1), None)
    assert str(info.value) == (
        "Invalid `admm.update_every_steps` with rho growing to `admm.rho_final` (default 1.0): "
        "expected training data whose batches an epoch are known, to count the phase's Z/U "
        "updates, or a fixed `admm.rho_multiplier`. Received: data of unknown length")
    final = tfadmm.ADMMPhase(epochs=3, rho=1e-3, rho_final=5e-2)
    assert 1e-3 * phase_multiplier(final, 10) ** 15 == pytest.approx(5e-2)


def test_rho_grows_to_the_default_final_unless_a_multiplier_is_given():
    admm = tfadmm.ADMMPhase(epochs=3, updates_per_epoch=4, rho=1e-3)
    assert 1e-3 * phase_multiplier(admm, 10) ** 15 == pytest.approx(DEFAULT_RHO_FINAL)
    assert phase_multiplier(tfadmm.ADMMPhase(rho=3.0), 10) == 1.0  # already above: stays
    assert phase_multiplier(tfadmm.ADMMPhase(rho_multiplier=1.3), 10) == 1.3
    # A fixed multiplier needs no count of the phase's updates.
    assert phase_multiplier(tfadmm.ADMMPhase(update_every_steps=3, rho_multiplier=1.3), None) == 1.3


def test_rho_final_and_rho_multiplier_together_are_refused():
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(),
                         admm=tfadmm.ADMMPhase(rho_final=0.1, rho_multiplier=1.2))
    assert str(info.value) == (
        "Invalid `admm`: expected rho_final or rho_multiplier, not both (rho_final sets the "
        "growth). Received: rho_final=0.1, rho_multiplier=1.2")


def test_rho_final_below_rho_is_refused():
    with pytest.raises(ValueError) as info:
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(),
                         admm=tfadmm.ADMMPhase(rho=0.01, rho_final=0.001))
    assert str(info.value) == ("Invalid `admm.rho_final`: expected None or a number >= admm.rho "
                               "(0.01). Received: 0.001")
    with pytest.raises(ValueError) as info:  # a bad rho is wrap's to name, not a TypeError
        tfadmm.run_stage(dense_model(), {"fc1": tfadmm.Sparsity(0.5)}, _data(),
                         admm=tfadmm.ADMMPhase(rho="x", rho_final=0.1))
    assert str(info.value) == "Invalid `rho`: expected a number > 0. Received: rho='x'"


@pytest.mark.parametrize("ending, logits", [
    ([keras.layers.Dense(3)], True),
    ([keras.layers.Dense(3, activation="softmax")], False),
    ([keras.layers.Dense(3), keras.layers.Activation("softmax")], False),
    ([keras.layers.Dense(3), keras.layers.Softmax()], False),
])
def test_outputs_logits_knows_every_way_a_model_ends_in_softmax(ending, logits):
    model = keras.Sequential([keras.Input((4,)), *ending])
    assert outputs_logits(model) is logits
