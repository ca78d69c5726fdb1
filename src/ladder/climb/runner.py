"""The climb: evaluate each rung on the same test set, stop at the target, fine-tune only with enough data."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ladder.climb import tasks as T
from ladder.climb.advisor import TASK_MINIMUMS, Advice, Answers, advise
from ladder.climb.tune import TuneOutcome, fine_tune
from ladder.errors import InvalidInput, Stopped
from ladder.evals.runner import EvalRun, run_eval
from ladder.evals.testset import TestItem
from ladder.ids import new_id
from ladder.pipelines.config import PipelineConfig
from ladder.pipelines.pipeline import Pipeline
from ladder.settings import get_settings
from ladder.store.db import DEFAULT_PROJECT, get_db


@dataclass
class ClimbOptions:
    task: str | None = None
    kbs: list[str] = field(default_factory=list)
    target: tuple[str, float] | None = None
    model: str | None = None
    all: bool = False
    force_tune: bool = False
    shots: int = 4
    hyperparameters: dict | None = None
    batch_size: int = 16
    latency_sample: int = 8
    regression: bool = True
    forgetting_threshold: float = 0.10
    regression_items: int = 40
    volume: int = 100_000  # requests over which a set-up cost is spread when ranking rungs by cost
    retrieval_k: int = 3
    tune: bool = True
    retrieved: bool = True  # the few-shot rung with the k most similar examples (needs the embedder)
    # Every rung decodes under its output format (label set, schema); False (`--free`) measures them unconstrained.
    constrained: bool = True


@dataclass
class RungResult:
    name: str
    kind: str
    config: PipelineConfig | None = None
    run: EvalRun | None = None
    setup: dict = field(default_factory=dict)
    skipped: str | None = None
    met_target: bool = False

    def value(self, metric: str | None = None) -> float | None:
        if self.run is None:
            return None
        return self.run.metrics.get(metric, self.run.value) if metric else self.run.value


@dataclass
class ClimbResult:
    id: str
    task: str
    target: tuple[str, float] | None
    headline: str
    rungs: list[RungResult]
    advice: Advice
    labels: list[str] = field(default_factory=list)
    recommendation: dict = field(default_factory=dict)
    forgetting: dict | None = None
    loss: list[tuple[int, float]] = field(default_factory=list)
    # The tuned rung's task metric per eval: {"name": "valid_accuracy", "points": [...], "best_step": N}
    tune_metric: dict | None = None
    report_dir: str | None = None
    n_train: int = 0
    n_test: int = 0
    wall_s: float = 0.0


def parse_target(text: str | None) -> tuple[str, float] | None:
    if not text:
        return None
    name, sep, value = text.partition("=")
    try:
        v = float(value)
    except ValueError:
        v = None
    if not sep or v is None:
        raise InvalidInput(f"--target {text!r}: write METRIC=VALUE, e.g. accuracy=0.8", param="target")
    return name.strip(), v / 100 if v > 1 else v


class UI:
    """How a climb talks to its caller: lines of text and progress bars (no-ops by default)."""

    def say(self, text: str) -> None:
        pass

    @contextlib.contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Callable]:
        yield lambda n=1, total=None, **f: None


def climb(
    train: list[TestItem],
    test: list[TestItem],
    opts: ClimbOptions | None = None,
    *,
    ui: UI | None = None,
    project_id: str = DEFAULT_PROJECT,
    should_stop: Callable[[], bool] | None = None,
    save: Callable[[ClimbResult, list[EvalRun]], None] | None = None,
) -> ClimbResult:
    """Climb the rungs on `test`; every eval run and the climb are stored together at the end.

    `should_stop` is asked before each rung and between the items of its eval (`Stopped` ends the
    climb, nothing stored; a fine-tune rung already started runs to its end first). `save(result,
    runs)` replaces the default storing (`save_climb`), e.g. to store inside the caller's transaction.
    """
    opts, ui = opts or ClimbOptions(), ui or UI()
    if not train or not test:
        raise InvalidInput("the ladder needs a training set and a test set with at least one item each")
    t_start = time.perf_counter()
    task = T.check_task(opts.task) if opts.task else T.infer_task(train)
    model = opts.model or get_settings().default_model
    headline = T.HEADLINE[task]
    metric = opts.target[0] if opts.target else headline
    labelled = task == "classification"
    labels = T.label_set(train, test) if labelled else []
    advice = advise(
        Answers(task=task if task in TASK_MINIMUMS else "open", knowledge_external=bool(opts.kbs), examples=len(train))
    )
    cid = new_id("climb")
    workdir = get_settings().shared_dir / "climbs" / cid
    base = T.zero_shot_config(task, train, model, labels, project_id).replace(
        retrieval_k=opts.retrieval_k,
        constrained=None if opts.constrained else False,  # None: the format's default (closed formats on)
    )
    metrics = [metric] + [m for m in _metrics_for(task, bool(opts.kbs), test) if m != metric]
    result = ClimbResult(cid, task, opts.target, metric, [], advice, labels, n_train=len(train), n_test=len(test))
    runs: list[EvalRun] = []  # stored with the climb, in one transaction, once it is complete

    def check() -> None:
        if should_stop and should_stop():
            raise Stopped(f"climb {cid} stopped after {len(result.rungs)} rung(s)")

    def evaluate(name: str, kind: str, cfg: PipelineConfig, setup: dict | None = None) -> RungResult:
        check()
        ui.say(f"rung {len(result.rungs) + 1}: {name}")
        with ui.bar(f"eval {name}", len(test)) as advance:
            run = run_eval(
                Pipeline(cfg, project_id=project_id),
                test,
                metrics=_usable(metrics, cfg),
                batch_size=opts.batch_size,
                latency_sample=opts.latency_sample,
                name=f"{cid}:{name}",
                on_progress=lambda n: advance(n),
                should_stop=should_stop,
                project_id=project_id,
                store=False,
            )
        runs.append(run)
        met = bool(opts.target) and run.metrics.get(metric, run.value) >= opts.target[1] - 1e-12
        r = RungResult(name, kind, cfg, run, setup or {}, met_target=met)
        result.rungs.append(r)
        lo, hi = run.ci
        ui.say(
            f"  {metric} {run.metrics.get(metric, run.value):.3f} (95% CI {lo:.3f}-{hi:.3f}), "
            f"format {run.format_compliance:.0%}, {run.cached} cached"
        )
        return r

    def stop() -> bool:
        return bool(opts.target) and not opts.all and any(r.met_target for r in result.rungs)

    def best_prompt_rung() -> RungResult:
        done = [r for r in result.rungs if r.run is not None and r.kind in ("prompt", "few-shot")]
        return max(done, key=lambda r: (r.value(metric), -result.rungs.index(r)))

    evaluate("prompt", "prompt", base)
    pool = [T.shot(t) for t in train]
    k = max(1, opts.shots)
    if not stop():
        evaluate(
            f"few-shot fixed k={k}",
            "few-shot",
            base.replace(few_shot=[T.shot(t) for t in T.stratified(train, k, labelled)], few_shot_k=0),
        )
    if opts.retrieved and not stop():
        evaluate(
            f"few-shot retrieved k={k}",
            "few-shot",
            base.replace(few_shot=pool, few_shot_mode="retrieved", few_shot_k=k),
        )
    if opts.kbs and not stop():
        evaluate("rag", "rag", best_prompt_rung().config.replace(kbs=list(opts.kbs)))
    if not stop():
        minimum = advice.minimum
        if not opts.tune:
            result.rungs.append(RungResult("fine-tune", "fine-tune", skipped="not run (switched off)"))
        elif len(train) < minimum and not opts.force_tune:
            result.rungs.append(
                RungResult(
                    "fine-tune",
                    "fine-tune",
                    skipped=(
                        f"not run: {len(train)} training examples is below the {task} minimum of {minimum} "
                        "(--force-tune to run it anyway)"
                    ),
                )
            )
        else:
            check()
            tuned = _tune(train, base, opts, workdir, ui, project_id)
            result.loss = tuned.loss
            if tuned.metric:
                result.tune_metric = {"name": tuned.metric_name, "points": tuned.metric, "best_step": tuned.best_step}
            setup = {
                "seconds": tuned.seconds,
                "trained_tokens": tuned.trained_tokens,
                "cost_usd": tuned.cost_usd,
                "job_id": tuned.job_id,
                "model": tuned.model,
            }
            if tuned.model is None:
                result.rungs.append(RungResult("fine-tune", "fine-tune", setup=setup, skipped=tuned.error))
            else:
                # The tuned model learned the labels: it is served without the long label listing.
                tcfg = base.replace(model=tuned.model, output_instruction="")
                evaluate("fine-tune", "fine-tune", tcfg, setup)
                if opts.kbs and not stop():
                    evaluate("fine-tune + rag", "fine-tune + rag", tcfg.replace(kbs=list(opts.kbs)), setup)
                if opts.regression:
                    check()
                    result.forgetting = _forgetting(model, tuned.model, opts, ui, project_id, runs)
    from ladder.climb.recommend import recommend

    result.recommendation = recommend(result, volume=opts.volume)
    result.wall_s = time.perf_counter() - t_start
    from ladder.climb.report import write_report

    result.report_dir = str(write_report(result))
    if save is None:
        save_climb(result, runs, project_id)
    else:
        save(result, runs)
    return result


def _metrics_for(task: str, rag: bool, test: list[TestItem]) -> list[str]:
    base = {
        "classification": ["accuracy", "macro_f1", "format"],
        "extraction": ["field_f1", "field_precision", "field_recall", "format"],
    }.get(task, ["rouge_l", "exact_match"])
    if rag:
        base += ["citation_validity"] + (["recall_at_k"] if any(t.sources for t in test) else [])
    return base


def _usable(metrics: list[str], cfg: PipelineConfig) -> list[str]:
    """RAG metrics only for rungs that retrieve."""
    return [m for m in metrics if cfg.kbs or m not in ("citation_validity", "recall_at_k")]


def _tune(train, base: PipelineConfig, opts: ClimbOptions, workdir, ui: UI, project_id: str) -> TuneOutcome:
    ui.say("rung: fine-tune (LoRA)")
    stack = contextlib.ExitStack()

    def progress(description: str, total: int | None):
        return stack.enter_context(ui.bar(description, total))

    with stack:
        # Trained with the short prompt it will be served with: the cost win of a tuned model.
        system = base.system_prompt
        return fine_tune(
            train,
            system,
            model=base.model,
            frame=base.frame,
            workdir=workdir,
            hyperparameters=opts.hyperparameters,
            progress=progress,
            project_id=project_id,
            parser=base.parser,  # the task metric during training, on the label set / schema it is served with
        )


def _forgetting(
    base_model: str, tuned_model: str, opts: ClimbOptions, ui: UI, project_id: str, runs: list[EvalRun]
) -> dict | None:
    """The tuned model against its base on a general regression set; a big drop is catastrophic forgetting."""
    from ladder.climb.regression import regression_items

    items = regression_items(opts.regression_items)
    if not items:
        return None
    ui.say(f"regression check: {len(items)} general questions, base vs tuned")
    out = {}
    for who, m in (("base", base_model), ("tuned", tuned_model)):
        cfg = PipelineConfig(model=m, max_tokens=12)
        run = run_eval(
            Pipeline(cfg, project_id=project_id),
            items,
            metrics=["contains", "rouge_l"],
            batch_size=opts.batch_size,
            latency_sample=0,
            name=f"regression:{who}",
            project_id=project_id,
            store=False,
        )
        runs.append(run)
        out[who] = run
    from ladder.evals.metrics import paired_bootstrap

    a = [x for x in _item_scores(out["base"])]
    b = [x for x in _item_scores(out["tuned"])]
    diff = paired_bootstrap(a, b)
    drop = out["base"].value - out["tuned"].value
    flagged = drop > opts.forgetting_threshold and diff["significant"]
    return {
        "base": out["base"].value,
        "tuned": out["tuned"].value,
        "drop": drop,
        "diff": diff,
        "threshold": opts.forgetting_threshold,
        "catastrophic": flagged,
        "n": len(items),
        "metric": "answer contained",
    }


def _item_scores(run: EvalRun) -> list[float]:
    from ladder.evals.metrics import contains

    return [contains(r["output"], r["reference"]) for r in run.rows]


def save_climb(result: ClimbResult, runs: list[EvalRun], project_id: str) -> None:
    """The climb's eval runs and its row, in one transaction (joins the caller's, if one is open)."""
    from ladder.evals.store import save_run

    rungs = [
        {
            "name": r.name,
            "kind": r.kind,
            "run": r.run.id if r.run else None,
            "value": r.value(result.headline),
            "skipped": r.skipped,
            "setup": r.setup,
        }
        for r in result.rungs
    ]
    summary = {
        "task": result.task,
        "headline": result.headline,
        "rungs": rungs,
        "recommendation": result.recommendation,
        "forgetting": _plain(result.forgetting),
    }
    with get_db().tx() as conn:
        for run in runs:
            save_run(run, project_id=project_id)
        conn.execute(
            "INSERT INTO climbs(id, project_id, config, summary, report_dir, created_at) VALUES (?,?,?,?,?,?)",
            (
                result.id,
                project_id,
                json.dumps({"target": result.target}),
                json.dumps(summary, default=str),
                result.report_dir,
                time.time(),
            ),
        )


def _plain(f: dict | None) -> dict | None:
    if not f:
        return f
    return {k: v for k, v in f.items() if not isinstance(v, EvalRun)}
