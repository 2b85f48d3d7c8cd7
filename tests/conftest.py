import os

import pytest
import torch

# The tests' matrices are tiny: one thread is faster than two fighting over a shared machine,
# and results do not depend on it.
torch.set_num_threads(1)

# `make test` runs the tests in pytest-xdist workers (-n auto). A worker's environment says
# so (PYTEST_XDIST_WORKER), and every child pytest a test starts (the bench run by the
# report, a sweep's shards) would inherit it: pytest-benchmark then disables itself and
# refuses --benchmark-only. The children are whole pytest sessions of their own.
for _name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
