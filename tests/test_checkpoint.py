"""Atomic folder writes: what a kill at any point leaves behind is cleaned up or recovered on the next write
or read, never left forever and never taken for a missing folder."""

import os

import pytest

from mtst.files import atomic_directory, recover_directory


def _write(target, text: str) -> None:
    with atomic_directory(target) as tmp:
        (tmp / "state.json").write_text(text)


def test_a_write_killed_halfway_leaves_nothing_after_the_next_write(tmp_path):
    target = tmp_path / "training_state"
    _write(target, "1")
    (tmp_path / ".training_state.tmp-killed").mkdir()  # what a SIGKILL during a write leaves
    (tmp_path / ".training_state.tmp-killed" / "state.json").write_text("half")
    _write(target, "2")
    assert sorted(os.listdir(tmp_path)) == ["training_state"]
    assert (target / "state.json").read_text() == "2"


def test_a_kill_between_the_two_renames_is_recovered_from_the_old_copy(tmp_path):
    target = tmp_path / "training_state"
    _write(target, "complete")
    old = tmp_path / ".training_state.old-x1"
    old.mkdir()
    os.replace(target, old / "training_state")  # the first rename happened, the second did not
    (tmp_path / ".training_state.tmp-x2").mkdir()
    assert recover_directory(target)
    assert (target / "state.json").read_text() == "complete"
    assert sorted(os.listdir(tmp_path)) == ["training_state"]


def test_recovery_leaves_a_complete_folder_alone(tmp_path):
    target = tmp_path / "best"
    _write(target, "ok")
    assert recover_directory(target) and (target / "state.json").read_text() == "ok"
    assert not recover_directory(tmp_path / "never-written")


def test_a_failed_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "best"
    _write(target, "old")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "state.json").write_text("new")
        raise RuntimeError("disk full")
    assert (target / "state.json").read_text() == "old" and os.listdir(tmp_path) == ["best"]
