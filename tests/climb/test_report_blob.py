"""Reports under LADDER_BLOB_URL: a copy in the blob store, read by a machine that lacks the local one."""

from __future__ import annotations

import shutil

from ladder.climb.recommend import recommend
from ladder.climb.report import report_html, write_report
from ladder.climb.runner import RungResult
from ladder.settings import reset_settings
from tests.climb.test_recommend_report import _result, _run


def _report():
    result = _result([RungResult("prompt", "prompt", run=_run("prompt", [True] * 6 + [False] * 4, 0.01))])
    result.recommendation = recommend(result)
    return write_report(result)


def test_a_report_is_copied_to_the_blob_store_and_read_from_it_elsewhere(tmp_path, monkeypatch):
    store = tmp_path / "blob-store"
    monkeypatch.setenv("LADDER_BLOB_URL", store.as_uri())
    reset_settings()
    out = _report()
    local = (out / "report.html").read_text()
    remote = store / "reports" / out.name
    assert (remote / "report.html").read_text() == local and (remote / "COMPLETE").is_file()
    shutil.rmtree(out)  # the machine that wrote it is gone: the recorded path names nothing here
    assert report_html(str(out)) == local
    assert report_html(str(out.parent / "climb-other")) is None


def test_without_a_blob_url_the_report_is_read_from_its_directory_only(tmp_path):
    out = _report()
    assert report_html(str(out)) == (out / "report.html").read_text()
    shutil.rmtree(out)
    assert report_html(str(out)) is None and report_html(None) is None
