"""Best-checkpoint selection and early stopping: the best eval so far and how many evals since it improved."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# A validation loss must fall by this much (relative) to break a tie in the task metric: float
# noise alone must not reset the patience counter.
LOSS_TOLERANCE = 1e-4


@dataclass
class BestSoFar:
    """Plain values only: it is saved in the checkpoint state, which is loaded with weights_only=True."""

    metric: float | None = None  # task metric of the best eval (None: the job has no task metric)
    loss: float | None = None  # its validation loss
    step: int = 0  # its step (0: no eval yet)
    bad_evals: int = 0  # evals since the last improvement

    def better(self, metric: float | None, loss: float) -> bool:
        """Higher task metric wins; on a tie (or without a metric), a lower validation loss."""
        if self.step == 0:
            return True
        if metric is not None and self.metric is not None and metric != self.metric:
            return metric > self.metric
        return self.loss is None or loss < self.loss - LOSS_TOLERANCE * abs(self.loss)

    def improves(self, metric: float | None, loss: float) -> bool:
        """Whether an eval resets the patience: a higher task metric (or, without one, a lower loss).

        A tie in the metric with a lower loss picks the checkpoint but does not extend training:
        the validation loss of a converged classifier keeps creeping down for epochs while its
        accuracy stays put, and counting that as progress could run a job to its last epoch.
        """
        if metric is not None and self.metric is not None:
            return metric > self.metric
        return self.better(metric, loss)

    def update(self, step: int, metric: float | None, loss: float) -> bool:
        """Record one eval; True when it is the new best."""
        self.bad_evals = 0 if self.improves(metric, loss) else self.bad_evals + 1
        if self.better(metric, loss):
            self.metric, self.loss, self.step = metric, loss, step
            return True
        return False

    def exhausted(self, patience: int) -> bool:
        return patience > 0 and self.bad_evals >= patience

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, saved: dict | None) -> BestSoFar:
        if not saved:
            return cls()
        metric, loss = saved.get("metric"), saved.get("loss")
        return cls(
            None if metric is None else float(metric),
            None if loss is None else float(loss),
            int(saved.get("step", 0)),
            int(saved.get("bad_evals", 0)),
        )
