import pytest

from charlm.steps import TrainStep, lm_loss
from charlm.validate import lookup, positive_int


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, None])
def test_positive_int_rejects_with_the_callers_name(value):
    with pytest.raises(ValueError, match=r"--batch-size must be a positive integer, got "):
        positive_int("--batch-size", value)


def test_positive_int_passes_values_and_optional_none():
    assert positive_int("n", 7) == 7
    assert positive_int("n", None, allow_none=True) is None


def test_lookup_names_what_is_unknown_and_the_choices():
    assert lookup({"a": 1, "b": 2}, "b") == 2
    with pytest.raises(ValueError, match=r"^unknown grid 'x'; choose from a, b$"):
        lookup({"a": 1, "b": 2}, "x", "grid")


def test_lm_loss_and_train_step_are_cross_entropy_and_one_adam_update():
    import math

    import torch
    from torch import nn

    class Uniform(nn.Module):  # logits all equal: cross-entropy is ln V exactly
        def __init__(self, vocab):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(vocab))

        def forward_sequence(self, idx, state=None):
            return self.bias.expand(*idx.shape, -1), None

    model = Uniform(5)
    idx = torch.tensor([[0, 1, 2]])
    assert lm_loss(model, idx, idx).item() == pytest.approx(math.log(5))
    step = TrainStep(model, idx, idx, lr=0.1)
    loss = step()
    assert loss.item() == pytest.approx(math.log(5))
    # Adam's first step moves each parameter by lr * sign(grad) (bias correction: m/sqrt(v) = 1)
    grad_sign = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0])  # targets 0,1,2 pushed up, 3,4 down
    torch.testing.assert_close(model.bias.detach(), -0.1 * grad_sign, atol=1e-6, rtol=0)
