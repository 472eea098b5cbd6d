"""What a training run folder holds and finding its runs: one home (medseg_masksup.checkpoint), asked by the study
runner instead of globbing file names itself."""

from __future__ import annotations

import json

import pytest

from medseg_masksup.checkpoint import (BEST, LAST, SUMMARY, CheckpointError, is_finished_run, is_unfinished_run,
                                       newest_finished_run, newest_unfinished_run, run_summary, training_runs)


def _run(output_dir, stamp, *files, dataset="glas", method="masksup"):
    folder = output_dir / dataset / method / stamp
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}" if name == SUMMARY else "x")
    return folder


def test_finished_and_unfinished_runs_are_told_apart(tmp_path):
    finished = _run(tmp_path, "20260101-000000", BEST, LAST, SUMMARY)
    unfinished = _run(tmp_path, "20260102-000000", BEST, LAST)
    summary_without_weights = _run(tmp_path, "20260103-000000", SUMMARY)
    empty = _run(tmp_path, "20260104-000000")
    assert (BEST, LAST, SUMMARY) == ("model.pt", "last.pt", "summary.json")
    assert training_runs(tmp_path) == [finished, unfinished, summary_without_weights, empty]
    assert [is_finished_run(p) for p in training_runs(tmp_path)] == [True, False, False, False]
    assert [is_unfinished_run(p) for p in training_runs(tmp_path)] == [False, True, False, False]
    assert newest_finished_run(tmp_path) == finished
    assert newest_unfinished_run(tmp_path) == unfinished


def test_the_newest_run_wins_and_an_empty_output_dir_has_none(tmp_path):
    assert newest_finished_run(tmp_path) is None and newest_unfinished_run(tmp_path / "absent") is None
    _run(tmp_path, "20260101-000000", BEST, SUMMARY)
    newer = _run(tmp_path, "20260101-000000-2", BEST, SUMMARY)
    _run(tmp_path, "20260101-000001", LAST)
    newest = _run(tmp_path, "20260101-000002", LAST)
    assert newest_finished_run(tmp_path) == newer
    assert newest_unfinished_run(tmp_path) == newest


def test_run_summary_reads_the_summary_or_names_the_file(tmp_path):
    folder = _run(tmp_path, "20260101-000000", BEST)
    (folder / SUMMARY).write_text(json.dumps({"best_val_dice": 0.8, "best_epoch": 3}))
    assert run_summary(folder) == {"best_val_dice": 0.8, "best_epoch": 3}
    (folder / SUMMARY).write_text("{half")
    with pytest.raises(CheckpointError, match=rf"^{folder / SUMMARY}: not a readable run summary \("):
        run_summary(folder)
    (folder / SUMMARY).write_text("[1]")
    with pytest.raises(CheckpointError, match=rf"^{folder / SUMMARY}: not a run summary \(it holds a list\)$"):
        run_summary(folder)


def test_the_study_runner_finds_its_trainings_through_the_run_folder_module():
    import inspect

    from medseg_masksup.study import runner

    source = inspect.getsource(runner)
    assert runner.CHECKPOINTS == {"best": BEST, "final": LAST}
    assert ".glob(\"*/*/*" not in source and "\"model.pt\"" not in source and "\"last.pt\"" not in source
