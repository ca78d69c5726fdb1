"""`ladder eval` prints the metrics table and writes a report directory."""

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ladder.cli.main import app


def test_eval_command_writes_report(tiny_model, tmp_path):
    test = tmp_path / "t.jsonl"
    test.write_text("\n".join(json.dumps({"input": f"q{i}", "expected": "a"}) for i in range(4)) + "\n")
    r = CliRunner().invoke(
        app,
        ["bots", "create", "b", "--model", tiny_model, "--labels", "a,b", "--max-tokens", "2", "--backend", "torch"],
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        app, ["eval", "b", str(test), "--batch-size", "2", "--latency-sample", "1"], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output and "95% CI" in r.output and "cost per 1,000" in r.output
    assert re.search(r"cut at max_tokens\W+\d/4", r.output)
    report = Path(re.search(r"report: (\S+report\.html)", r.output).group(1))
    assert report.exists() and (report.parent / "report.md").exists()
    r = CliRunner().invoke(app, ["evals", "list"], env={"COLUMNS": "200"})
    assert "eval-" in r.output
