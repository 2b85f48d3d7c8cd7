import re

import pytest
import torch

from analysis.env import environment
from analysis.timing import configure_backends

KEYS = {"device", "device_name", "torch", "cuda", "cudnn", "threads", "tf32_matmul",
        "tf32_cudnn", "cudnn_benchmark", "python", "git_commit", "date"}


def test_environment_carries_every_field_a_result_depends_on():
    env = environment("cpu")
    assert KEYS <= set(env)
    assert env["device"] == "cpu"
    assert env["torch"] == torch.__version__
    assert env["threads"] == torch.get_num_threads()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["date"])
    assert env["git_commit"] is None or re.fullmatch(r"[0-9a-f]{4,40}", env["git_commit"])


def test_cpu_environment_leaves_gpu_only_fields_empty():
    env = environment("cpu")
    assert env["cuda"] is None and env["cudnn"] is None and env["tf32_matmul"] is None


def test_environment_reports_the_thread_count_that_was_set():
    before = torch.get_num_threads()
    try:
        configure_backends("cpu", threads=1)
        assert environment("cpu")["threads"] == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_environment_records_versions_and_tf32_flags():
    configure_backends("cuda", cudnn_benchmark=False, tf32=False)
    env = environment("cuda")
    assert env["cuda"] == torch.version.cuda
    assert env["cudnn"] == torch.backends.cudnn.version()
    assert env["tf32_matmul"] is False and env["tf32_cudnn"] is False
    assert env["cudnn_benchmark"] is False
    assert env["device_name"] == torch.cuda.get_device_name(0)
