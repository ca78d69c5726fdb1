"""LoRA dropout that costs less on CPU: the same inverted dropout, with the random draws cut four-fold.

PyTorch's CPU dropout draws one Bernoulli value per element from MT19937; on 2 cores that was
28% of a LoRA training step of SmolLM2-135M (0.95 of 3.4 s, 16 banking questions), as every
adapted linear layer masks its input anew. Here each 64-bit draw gives four 16-bit uniforms,
one element each: the same distribution (p rounded to 1/65536), 2.7x faster. On CUDA the
built-in dropout is already cheap and is kept.
"""

from __future__ import annotations

import torch
from torch import nn

_SCALE = 1 << 16


class CheapDropout(nn.Module):
    """Drop each element with probability `p` in training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        # keep an element when its uniform int16 is at least this
        self._threshold = round(p * _SCALE) - _SCALE // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        draws = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        keep = draws.view(torch.int16)[:n].view(x.shape) >= self._threshold
        return x * keep * (1.0 / (1.0 - self.p))


def cheapen_lora_dropout(model) -> int:
    """Swap peft's LoRA dropout modules of a CPU model for `CheapDropout`; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, d in list(drops.items()):
            if isinstance(d, nn.Dropout) and d.p > 0:
                drops[name] = CheapDropout(d.p)
                swapped += 1
    return swapped
