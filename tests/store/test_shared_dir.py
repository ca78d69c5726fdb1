"""LADDER_SHARED_DIR: the artefacts every machine of a deployment reads (checkpoints, adapters, reports)."""

from __future__ import annotations

from ladder.settings import get_settings, reset_settings


def test_tuning_reports_and_exports_go_under_the_shared_dir(ladder_home, tmp_path, monkeypatch):
    from ladder.climb.report import reports_dir
    from ladder.tuning.export import _default_out
    from ladder.tuning.service import job_dir

    assert job_dir("ftjob-x") == ladder_home / "tuning" / "ftjob-x"  # one machine: all under LADDER_HOME
    shared = tmp_path / "mnt-shared"
    monkeypatch.setenv("LADDER_SHARED_DIR", str(shared))
    reset_settings()
    assert get_settings().shared_dir == shared
    assert job_dir("ftjob-x") == shared / "tuning" / "ftjob-x"
    assert reports_dir().is_relative_to(shared) and _default_out("ft:a:b").is_relative_to(shared)
    assert get_settings().blobs_dir.is_relative_to(ladder_home)  # machine-local state stays local
