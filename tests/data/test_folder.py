import pytest

from tfadmm.data.folder import load_folder
from tfadmm.errors import DataError


def test_train_and_test_trees(tmp_path, write_tree):
    write_tree(tmp_path / "train", {"cat": 3, "dog": 2})
    write_tree(tmp_path / "test", {"cat": 1, "dog": 1})
    raw = load_folder(tmp_path)
    assert (raw.num_train, raw.num_test, raw.num_classes) == (5, 2, 2)
    assert raw.image_shape == (10, 12, 3)
    labels = [int(y) for _, y in raw.read("train", 0, 5)]
    assert sorted(labels) == [0, 0, 0, 1, 1]
    path, _ = next(iter(raw.read("test", 0, 1)))
    assert raw.decode(path).shape == (10, 12, 3)


def test_single_tree_holds_out_a_test_split(tmp_path, write_tree):
    write_tree(tmp_path, {"a": 5, "b": 5})
    raw = load_folder(tmp_path, validation_split=0.2)
    assert (raw.num_train, raw.num_test) == (8, 2)


def test_single_tree_needs_a_validation_split(tmp_path, write_tree):
    write_tree(tmp_path, {"a": 1})
    with pytest.raises(DataError) as info:
        load_folder(tmp_path, validation_split=0)
    assert str(info.value) == (
        f"{tmp_path} is a single image tree: it needs validation_split > 0 to hold out "
        "evaluation data. Received: validation_split=0"
    )


def test_no_class_folders(tmp_path):
    with pytest.raises(DataError) as info:
        load_folder(tmp_path)
    assert str(info.value) == (
        f"No class folders in {tmp_path}: expected one sub-folder of images per class."
    )
