import pytest
import torch

# The tests' matrices are tiny: one thread is faster than two fighting over a shared machine,
# and results do not depend on it.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
