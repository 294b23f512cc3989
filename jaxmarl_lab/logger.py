"""Where training metrics go: the run's ``metrics.csv`` (always), wandb and TensorBoard (opt-in).

wandb is imported only when asked for and honours ``WANDB_MODE`` (tests run it offline);
TensorBoard event files are written with tensorboardX (no TensorFlow needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class MetricsLogger:
    """Fan one ``log(step, metrics)`` call out to every sink of a run."""

    def __init__(self, run, *, config: Mapping | None = None, wandb: bool = False, wandb_project: str = "jaxmarl_lab",
                 wandb_name: str | None = None, wandb_tags=(), wandb_mode: str | None = None,
                 tensorboard: bool = False, resume: bool = False):
        self.run = run
        self._wandb = None
        self._tensorboard = None
        if wandb:
            import wandb as wandb_lib

            mode = wandb_mode or os.environ.get("WANDB_MODE", "online")
            self._wandb = wandb_lib.init(
                project=wandb_project, name=wandb_name or run.run_id, tags=list(wandb_tags), config=dict(config or {}),
                dir=str(run.path), mode=mode, id=run.run_id.replace("/", "_"), resume="allow" if resume else None)
            run.update_metadata(wandb_run=self._wandb.id, wandb_mode=mode)
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tensorboard = SummaryWriter(str(run.path / "tensorboard"))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        metrics = {k: float(v) for k, v in metrics.items()}
        self.run.log_metrics(step, metrics)
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)
        if self._tensorboard is not None:
            for key, value in metrics.items():
                self._tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
