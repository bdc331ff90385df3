"""tf.distribute: two logical CPUs and two local workers match a single-device run."""

import json
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfadmm
from tests import _cli
from tfadmm.errors import RecipeError
from tfadmm.recipes import parse_recipe

# One small ADMM + retraining run (SGD, fixed data order, global batch 64);
# `STRATEGY` picks the strategy, the weights go to argv[1].
SCRIPT = """\
import os, sys
import numpy as np, tensorflow as tf
kind = os.environ["STRATEGY"]
if kind == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
elif kind == "multi_worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = tf.distribute.get_strategy()
import keras, tfadmm
from tfadmm import models
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 28, 28, 1)).astype("float32")
y = rng.integers(0, 10, 256)
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
keras.utils.set_random_seed(0)
with strategy.scope():
    admm = tfadmm.wrap(models.get("lenet5", input_shape=(28, 28, 1), num_classes=10),
                       {"conv*": tfadmm.Sparsity(0.5), "fc*": tfadmm.Sparsity(0.9)},
                       rho=0.5, rho_multiplier=1.3, update_every_steps=2)
    admm.compile(optimizer=keras.optimizers.SGD(0.05),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
admm.fit(data, epochs=2, verbose=0)
rho = float(keras.ops.convert_to_numpy(admm.rho))
tfadmm.project(admm)
admm.fit(data, epochs=1, verbose=0)
np.savez(sys.argv[1], rho=rho, *[keras.ops.convert_to_numpy(w) for w in admm.model.weights])
"""


def _run(path, strategy, tf_config=None):
    env = _cli.env(STRATEGY=strategy, **({"TF_CONFIG": tf_config} if tf_config else {}))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(path)], cwd=_cli.ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)


def _finish(*processes):
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]


def _assert_same(a, b):
    a, b = np.load(a), np.load(b)
    assert a["rho"] == pytest.approx(0.5 * 1.3**4)  # 8 steps, an update every 2: once per step
    for key in a.files:
        np.testing.assert_allclose(b[key], a[key], atol=1e-6)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "w.npz"
    _finish(_run(path, "none"))
    return path


def test_mirrored_two_cpus_match_one_device(single, tmp_path):
    _finish(_run(tmp_path / "w.npz", "mirrored"))
    _assert_same(single, tmp_path / "w.npz")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_match_one_device(single, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [
        _run(tmp_path / f"w{index}.npz", "multi_worker",
             json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        for index in range(2)
    ]
    _finish(*workers)
    _assert_same(single, tmp_path / "w0.npz")
    _assert_same(single, tmp_path / "w1.npz")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_admm_state_float32(policy):
    from tests._tiny_models import dense_model

    keras.mixed_precision.set_global_policy(policy)
    try:
        admm = tfadmm.wrap(dense_model(), {"fc*": tfadmm.Sparsity(0.75)}, rho=0.1,
                           update_every_steps=2)
        admm.compile(optimizer="sgd", loss="mse")
        x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
        history = admm.fit(x, np.zeros((32, 3)), batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["admm_penalty"]).all()
        assert {s.z.dtype for s in admm.kernels} == {"float32"}
        tfadmm.project(admm)
        admm.fit(x, np.zeros((32, 3)), batch_size=8, epochs=1, verbose=0)
        kernel = keras.ops.convert_to_numpy(admm.model.get_layer("fc1").kernel)
        assert (kernel == 0).mean() == 0.75
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_jit_compiled_train_step():
    from tests._tiny_models import dense_model

    admm = tfadmm.wrap(dense_model(), {"fc*": tfadmm.Sparsity(0.75)}, update_every_steps=2)
    admm.compile(optimizer="adam", loss="mse", jit_compile=True)
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    admm.fit(x, np.zeros((32, 3)), batch_size=8, epochs=1, verbose=0)
    assert float(keras.ops.convert_to_numpy(admm.rho)) == pytest.approx(1e-3 * 1.07**2)
    tfadmm.project(admm)
    admm.fit(x, np.zeros((32, 3)), batch_size=8, epochs=1, verbose=0)
    assert (keras.ops.convert_to_numpy(admm.model.get_layer("fc1").kernel) == 0).mean() == 0.75


def test_recipe_keys():
    recipe = parse_recipe(_cli.TINY + "distribute: mirrored\nprecision: mixed_bfloat16\n", "t")
    assert (recipe.distribute, recipe.precision, recipe.jit_compile) == (
        "mirrored", "mixed_bfloat16", "auto")
    with pytest.raises(RecipeError) as info:
        parse_recipe(_cli.TINY + "distribute: mirrored\njit_compile: true\n", "t.yaml")
    assert str(info.value) == (
        "t.yaml:12: jit_compile: expected auto or false with distribute: mirrored (XLA compiles "
        "a single device's step). Received: True"
    )


# -- who writes the run directory: the chief only ------------------------------------------------

def _strategy(cluster, task_type, task_id):
    import tensorflow as tf

    class Strategy:  # what is_chief reads of a tf.distribute strategy
        cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)

    return Strategy()


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "chief", 0, True),
    ({"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "worker", 0, False),
    ({"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "worker", 1, False),
    ({"worker": ["b:1", "c:1"]}, "worker", 0, True),  # no chief: worker 0 is the chief
    ({"worker": ["b:1", "c:1"]}, "worker", 1, False),
    ({"worker": ["b:1"], "evaluator": ["e:1"]}, "evaluator", 0, False),
    ({"worker": ["b:1"], "ps": ["p:1"]}, "ps", 0, False),
])
def test_is_chief_for_each_task_type(cluster, task_type, task_id, chief):
    from tfadmm.recipes.execution import is_chief

    assert is_chief(_strategy(cluster, task_type, task_id)) is chief


def test_is_chief_without_a_cluster():
    import tensorflow as tf

    from tfadmm.recipes.execution import is_chief

    assert is_chief(tf.distribute.get_strategy())


WORKER_RECIPE = """\
version: 1
name: worker
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 128, validation_split: 0.25}
baseline: {epochs: 1}
defaults:
  admm: {epochs: 1, update_every_steps: 1}
  retrain: {epochs: 1}
stages:
  - name: prune
    targets: {"*": {sparsity: 0.5}}
"""


def test_a_non_chief_worker_writes_nothing(tmp_path, monkeypatch):
    from tfadmm.recipes import execution, run_recipe

    monkeypatch.setattr(execution, "is_chief", lambda strategy: False)
    result = run_recipe(parse_recipe(WORKER_RECIPE, "worker.yaml"), tmp_path / "out", verbose=0)
    assert [stage["name"] for stage in result.history["stages"]] == ["prune"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
