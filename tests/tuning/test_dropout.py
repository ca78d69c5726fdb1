"""CheapDropout: inverted dropout at rate p in training, identity in eval, the mask in the gradient too."""

from __future__ import annotations

import pytest
import torch

from ladder.tuning import trainer
from ladder.tuning.dropout import CheapDropout


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_it_drops_about_p_of_the_elements_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(400, 500)
    y = CheapDropout(p).train()(x)
    dropped = float((y == 0).float().mean())
    assert dropped == pytest.approx(p, abs=0.004)  # 200,000 draws: the standard error is under 0.001
    values = torch.unique(y).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p))
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)
    # independent draws: neighbouring elements (from one 64-bit draw) are dropped together no more than p*p
    pairs = float(((y[:, 0::2] == 0) & (y[:, 1::2] == 0)).float().mean())
    assert pairs == pytest.approx(p * p, abs=0.003)


def test_eval_mode_and_zero_rate_are_the_identity_and_the_gradient_is_masked():
    x = torch.randn(64, 32, requires_grad=True)
    assert CheapDropout(0.5).eval()(x) is x and CheapDropout(0.0).train()(x) is x
    y = CheapDropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)
    with pytest.raises(ValueError):
        CheapDropout(1.0)


def test_a_cpu_lora_model_gets_it_in_every_adapted_layer(tiny_model_dir):
    hp = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "lora_target_modules": ["q_proj", "v_proj"]}
    model = trainer.load_lora_model(tiny_model_dir, hp, seed=0, device="cpu")
    drops = [m.lora_dropout["default"] for m in model.modules() if hasattr(m, "lora_dropout")]
    assert len(drops) == 4 and all(isinstance(d, CheapDropout) and d.p == 0.1 for d in drops)
