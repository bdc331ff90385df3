import json
import math

import keras
import numpy as np
import pytest

import tfadmm
from tests._tiny_models import dense_model, pruned, ternary_conv_model
from tfadmm import report as reporting
from tfadmm.errors import TfadmmError


def test_pruned_model_rows_count_the_kernels():
    admm_model, plain = pruned()
    report = tfadmm.build_report(admm_model)
    assert [(r.layer, r.kernel, r.shape) for r in report.rows] == [
        ("fc1", "kernel", (6, 32)),
        ("fc2", "kernel", (32, 3)),
    ]
    for row, layer in zip(report.rows, ("fc1", "fc2"), strict=True):
        kernel = keras.ops.convert_to_numpy(plain.get_layer(layer).kernel)
        assert row.weights == kernel.size
        assert row.nonzeros == np.count_nonzero(kernel)
        assert row.sparsity == pytest.approx(1 - row.nonzeros / row.weights)
        assert row.distinct_values == np.unique(kernel).size
        assert row.bits == 32
        assert row.dense_bytes == kernel.nbytes
        assert row.compressed
    assert report.weights == 192 + 96
    assert report.nonzeros == 20 + 10
    assert report.pruning_rate == pytest.approx(288 / 30)
    assert report.other_parameters == 32 + 3
    assert report.other_bytes == 4 * 35
    # Same figures read from the stripped model.
    assert tfadmm.build_report(plain).rows == report.rows


def test_ternary_kernels_are_stored_as_one_bit_codes():
    report = tfadmm.build_report(ternary_conv_model())
    conv = report.rows[0]
    assert (conv.layer, conv.distinct_values, conv.bits) == ("conv1", 3, 1)
    assert conv.compressed
    # 1-bit codes for the non-zeros, 2 float32 codebook entries, bitmask or relative index.
    plan_bits = conv.nonzeros * 1 + 2 * 32
    assert plan_bits < conv.compressed_bytes * 8 <= plan_bits + conv.weights + 7
    assert report.storage_ratio > 8


def test_only_wrapped_kernels_count_in_the_pruning_rate():
    admm_model, _ = pruned(targets={"fc1": tfadmm.Sparsity(0.75)})
    report = tfadmm.build_report(admm_model)
    assert [r.compressed for r in report.rows] == [True, False]
    assert report.pruning_rate == pytest.approx(192 / 48)
    assert report.overall_pruning_rate == pytest.approx(288 / (48 + 96))


def test_dense_plain_model_has_nothing_compressed():
    report = tfadmm.build_report(dense_model())
    assert not report.compressed_rows
    assert math.isinf(report.pruning_rate)
    assert report.totals()["pruning_rate"] is None
    assert report.storage_ratio == pytest.approx(1.0)


def test_stages_and_baseline_are_recorded_and_rendered():
    report = tfadmm.build_report(
        pruned()[0],
        stages=[
            {"stage": "prune", "accuracy_before": 0.98, "accuracy_after": 0.97},
            {"name": "quantize", "accuracy_after": 0.965},
        ],
        baseline_accuracy=0.99,
    )
    assert report.stages == (
        reporting.StageAccuracy("prune", 0.98, 0.97),
        reporting.StageAccuracy("quantize", None, 0.965),
    )
    table = reporting.render_table(report)
    assert "baseline accuracy: 0.9900" in table
    assert table.splitlines()[-1] == "quantize                -          0.9650"
    markdown = reporting.render_markdown(report)
    assert "| prune | 0.9800 | 0.9700 |" in markdown
    assert markdown.startswith("### Compression report: tiny\n")


def test_render_table_lists_rows_and_totals():
    table = reporting.render_table(tfadmm.build_report(pruned()[0]))
    lines = table.splitlines()
    assert lines[0] == "Compression report: tiny"
    assert lines[1].split() == [
        "layer", "kernel", "shape", "weights", "non-zeros", "sparsity", "distinct", "bits",
        "index", "dense", "B", "compressed", "B", "rate",
    ]
    assert lines[3].split()[:6] == ["fc1", "kernel", "6x32", "192", "20", "89.58%"]
    assert "pruning rate (compressed kernels): 9.6x (288 weights -> 30 non-zeros)" in lines


def test_table_groups_thousands_in_every_count_column():
    model = pruned(hidden=1200, targets={"fc*": tfadmm.Sparsity(0.5)})[0]  # fc1: 7,200 weights
    report = tfadmm.build_report(model)
    distinct = report.rows[0].distinct_values  # about 3,600 survivors and 0
    assert distinct > 1000
    cells = reporting.render_table(report).splitlines()[3].split()
    assert cells[3:5] == ["7,200", "3,600"]
    assert cells[6] == f"{distinct // 1000},{distinct % 1000:03d}"


def test_json_round_trip():
    report = tfadmm.build_report(
        ternary_conv_model(),
        stages=[{"stage": "binarize", "accuracy_before": 0.5, "accuracy_after": 0.4,
                 "start_val_accuracy": 0.3, "chosen": "retrain epoch 2"}],
        baseline_accuracy=0.6,
    )
    assert "| binarize | 0.5000 | 0.4000 | 0.3000 | retrain epoch 2 |" in (
        reporting.render_markdown(report))
    text = reporting.to_json(report)
    assert json.loads(text)["totals"]["weights"] == report.weights
    assert reporting.from_json(text) == report


def test_malformed_stage_is_rejected_with_the_value():
    with pytest.raises(TfadmmError) as info:
        tfadmm.build_report(dense_model(), stages=[{"stage": "a", "acc": 1}])
    assert str(info.value) == (
        "Invalid `stages` entry: expected keys 'stage', 'accuracy_before', "
        "'accuracy_after', 'start_val_accuracy', 'chosen'. Received: {'stage': 'a', 'acc': 1}"
    )


def test_non_model_is_rejected():
    with pytest.raises(TfadmmError) as info:
        tfadmm.build_report("model.keras")
    assert str(info.value) == "Expected a keras.Model. Received: str"
