"""The generation settings a client sets on one request, applied to a bot's pipeline within its config's rules."""

from __future__ import annotations

from dataclasses import dataclass

from ladder.pipelines.config import PipelineConfig


@dataclass(frozen=True)
class ClientSettings:
    """Only what the client set explicitly (None: the bot's own setting stays)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def apply(self, config: PipelineConfig) -> PipelineConfig:
        """The config for this request; `replace` re-checks every bound, so a bot's rules still hold.

        The client's stop sequences are added to the bot's own: those are part of how the bot
        answers (e.g. a newline ending a label), not a default the client may lift.
        """
        changes: dict = {
            k: v
            for k, v in (
                ("max_tokens", self.max_tokens),
                ("temperature", self.temperature),
                ("top_p", self.top_p),
                ("seed", self.seed),
            )
            if v is not None
        }
        if self.stop:
            changes["stop"] = list(dict.fromkeys([*config.stop, *self.stop]))
        return config.replace(**changes) if changes else config
