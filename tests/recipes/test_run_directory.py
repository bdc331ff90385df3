"""`RunDirectory`: kept checkpoints, their fingerprints, fallback on damage, a damaged state."""

import hashlib
import json
import pathlib

import pytest

from tfadmm.errors import ModelError, TfadmmError
from tfadmm.recipes.run_directory import Checkpoint, RunDirectory


class _Model:
    """Stands in for a Keras model: `save` writes its bytes."""

    def __init__(self, data):
        self.data = data

    def save(self, path):
        pathlib.Path(path).write_bytes(self.data)


def _load(path):
    """Stands in for `load_file`: refuses what is not a saved `_Model`."""
    data = pathlib.Path(path).read_bytes()
    if not data.startswith(b"model"):
        raise ModelError(f"Cannot load model file {path}: not a .keras archive")
    return data


def _run(tmp_path, positions, keep=2):
    """A run directory with a checkpoint committed at each of `positions`."""
    directory = RunDirectory(tmp_path / "run", keep_checkpoints=keep)
    state = directory.prepare("version: 1\n", resume=False, force=False)
    for position in positions:
        directory.commit_checkpoint(_Model(f"model {position}".encode()), state, position)
    return directory, directory.read_state()


def _files(directory):
    return sorted(p.name for p in directory.path("checkpoints").iterdir())


def _damage(directory, name, data=b"PK\x03\x04 cut short"):
    directory.path("checkpoints", name).write_bytes(data)


def test_the_last_two_checkpoints_are_kept_with_position_size_and_sha256(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2), (0, "retrain", 0)])
    assert _files(directory) == ["0-admm-2.keras", "0-retrain-0.keras"]
    data = b"model (0, 'retrain', 0)"
    assert state["checkpoints"][-1] == {
        "path": "checkpoints/0-retrain-0.keras", "position": [0, "retrain", 0],
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert [c["position"] for c in state["checkpoints"]] == [[0, "admm", 2], [0, "retrain", 0]]
    assert state["position"] == [0, "retrain", 0]
    assert state["checkpoint"] == "checkpoints/0-retrain-0.keras"


@pytest.mark.parametrize("keep", [1, 3])
def test_keep_checkpoints_sets_how_many(tmp_path, keep):
    positions = [(0, "admm", epoch) for epoch in range(1, 5)]
    directory, state = _run(tmp_path, positions, keep=keep)
    assert _files(directory) == [f"0-admm-{epoch}.keras" for epoch in range(5 - keep, 5)]
    assert len(state["checkpoints"]) == keep


def test_a_rerun_epoch_replaces_its_checkpoint(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    directory.commit_checkpoint(_Model(b"model again"), state, (0, "admm", 2))
    assert [c["path"] for c in state["checkpoints"]] == [
        "checkpoints/0-admm-1.keras", "checkpoints/0-admm-2.keras"]
    assert state["checkpoints"][-1]["size"] == len(b"model again")


def test_release_checkpoints_deletes_them_after_the_state_stops_naming_them(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    directory.release_checkpoints(state)
    assert _files(directory) == []
    assert directory.read_state()["checkpoints"] == []


def test_usable_checkpoint_is_the_latest_when_it_verifies(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    lines = []
    checkpoint, model = directory.usable_checkpoint(state, _load, part=(0,),
                                                    on_fallback=lines.append)
    assert checkpoint.position == [0, "admm", 2]
    assert model == b"model (0, 'admm', 2)"
    assert lines == []


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.unlink(), "the file is missing"),
    (lambda path: path.write_bytes(b"PK"), "damaged: 2 bytes, state.json recorded 20"),
    (lambda path: path.write_bytes(b"model (0, 'admm', 9)"),
     "damaged: its sha256 differs from the one state.json recorded"),
])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, problem):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    damage(directory.path("checkpoints", "0-admm-2.keras"))
    lines = []
    checkpoint, model = directory.usable_checkpoint(state, _load, part=(0,),
                                                    on_fallback=lines.append)
    assert checkpoint == Checkpoint("checkpoints/0-admm-1.keras", [0, "admm", 1], 20,
                                    hashlib.sha256(b"model (0, 'admm', 1)").hexdigest())
    assert model == b"model (0, 'admm', 1)"
    assert lines == [
        f"checkpoints/0-admm-2.keras: {problem}; falling back to the previous checkpoint"]


def test_a_checkpoint_that_does_not_load_falls_back_to_the_previous_one(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    state["checkpoints"][-1].update(size=None, sha256=None)  # nothing to check it against
    _damage(directory, "0-admm-2.keras")
    lines = []
    checkpoint, _ = directory.usable_checkpoint(state, _load, part=(0,), on_fallback=lines.append)
    assert checkpoint.path == "checkpoints/0-admm-1.keras"
    path = directory.path("checkpoints", "0-admm-2.keras")
    assert lines == [
        f"checkpoints/0-admm-2.keras: Cannot load model file {path}: not a .keras archive; "
        "falling back to the previous checkpoint"]


def test_a_previous_checkpoint_of_completed_work_means_the_start_of_the_stage(tmp_path):
    directory, state = _run(tmp_path, [(0, "retrain", 1), (1, "admm", 1)])
    _damage(directory, "1-admm-1.keras")
    lines = []
    assert directory.usable_checkpoint(state, _load, part=(1,),
                                       on_fallback=lines.append) == (None, None)
    assert lines == ["checkpoints/1-admm-1.keras: damaged: 14 bytes, state.json recorded 20; "
                     "falling back to the previous checkpoint"]


def test_no_usable_checkpoint_is_one_line_and_deletes_nothing(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)])
    _damage(directory, "0-admm-1.keras")
    directory.path("checkpoints", "0-admm-2.keras").unlink()
    before = {p: p.read_bytes() for p in directory.root.rglob("*") if p.is_file()}
    with pytest.raises(TfadmmError) as info:
        directory.usable_checkpoint(state, _load, part=(0,))
    assert str(info.value) == (
        f"{directory.root}: cannot resume: no kept checkpoint is usable "
        "(checkpoints/0-admm-2.keras: the file is missing; checkpoints/0-admm-1.keras: "
        "damaged: 14 bytes, state.json recorded 20). Nothing was deleted: restore a "
        "checkpoint from a copy, or start the run over with --force."
    )
    assert {p: p.read_bytes() for p in directory.root.rglob("*") if p.is_file()} == before


def test_a_state_of_an_earlier_tfadmm_keeps_its_one_checkpoint(tmp_path):
    directory, state = _run(tmp_path, [(0, "admm", 1), (0, "admm", 2)], keep=1)
    del state["checkpoints"]  # the earlier format: only `checkpoint` and `position`
    directory.write_state(state)
    state = directory.read_state()
    assert directory.kept_checkpoints(state) == [
        Checkpoint("checkpoints/0-admm-2.keras", [0, "admm", 2])]
    checkpoint, model = directory.usable_checkpoint(state, _load, part=(0,))
    assert checkpoint.path == "checkpoints/0-admm-2.keras"
    assert model == b"model (0, 'admm', 2)"
    directory.commit_checkpoint(_Model(b"model 3"), state, (0, "admm", 3))
    assert [c["path"] for c in state["checkpoints"]] == ["checkpoints/0-admm-3.keras"]
    assert _files(directory) == ["0-admm-3.keras"]


@pytest.mark.parametrize("text, problem", [
    ('{"recipe_sha256": "ab', "not JSON: Unterminated string starting at: line 1 column 19 "
                             "(char 18)"),
    ("", "not JSON: Expecting value: line 1 column 1 (char 0)"),
    ("[1, 2]", "a JSON array, not an object"),
    ("null", "a JSON null, not an object"),
    ('{"completed_stages": "1"}', "completed_stages: expected an integer >= 0. Received: '1'"),
    ('{"completed_stages": 0, "position": 3}',
     "position: expected a list or null. Received: 3"),
    ('{"completed_stages": 0, "checkpoints": [{"path": 1}]}',
     "checkpoints: expected a list of objects with the keys ['path', 'position', 'sha256', "
     "'size']. Received: [{'path': 1}]"),
])
def test_a_damaged_state_file_is_one_line_naming_it(tmp_path, text, problem):
    directory, _ = _run(tmp_path, [(0, "admm", 1)])
    directory.path("state.json").write_text(text)
    with pytest.raises(TfadmmError) as info:
        directory.prepare("version: 1\n", resume=True, force=False)
    assert str(info.value) == (
        f"{directory.path('state.json')}: the run state is damaged ({problem}); expected the "
        "JSON object tfadmm writes. Nothing was deleted: restore the file from a copy, or "
        "start the run over with --force."
    )
    assert directory.path("state.json").read_text() == text
    assert _files(directory) == ["0-admm-1.keras"]


def test_a_state_file_that_is_not_utf8_is_damaged(tmp_path):
    directory, _ = _run(tmp_path, [])
    directory.path("state.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(TfadmmError, match=r"the run state is damaged \(not JSON: 'utf-8' codec"):
        directory.read_state()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_keep_checkpoints_must_be_a_positive_integer(tmp_path, value):
    with pytest.raises(TfadmmError) as info:
        RunDirectory(tmp_path, keep_checkpoints=value)
    assert str(info.value) == (
        f"keep_checkpoints: expected an integer >= 1. Received: {value!r}")


def test_a_fresh_state_records_no_checkpoint(tmp_path):
    directory, state = _run(tmp_path, [])
    assert json.loads(directory.path("state.json").read_text())["checkpoints"] == []
    assert directory.kept_checkpoints(state) == []
