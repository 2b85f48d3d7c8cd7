import platform
import re

import pytest
import torch

from analysis.calibrate import default_cache_path
from analysis.env import device_name, environment
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


XEON = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"


def _cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                    "model name\t: Intel(R) Xeon(R)  Platinum 8375C CPU @ 2.90GHz\n")
    return info


def test_a_cpu_is_named_by_its_model_from_cpuinfo(tmp_path):
    assert device_name("cpu", cpuinfo=_cpuinfo(tmp_path)) == XEON
    assert device_name("cpu", cpuinfo=tmp_path / "absent") == (platform.machine() or "cpu")


def test_every_record_names_the_cpu_alike(tmp_path, monkeypatch):
    # the machine file's name, its cache path and every environment dict read one function
    monkeypatch.setattr("analysis.env.CPUINFO", _cpuinfo(tmp_path))
    assert environment("cpu")["device_name"] == XEON
    name = default_cache_path("cpu", threads=1).name
    assert name.startswith("cpu-Intel_R__Xeon_R__Platinum_8375C_CPU_")


def test_an_unavailable_cuda_device_is_named_by_a_value_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        device_name("cuda")
