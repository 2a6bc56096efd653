import pytest

from a2v.device import resolve_device


def test_explicit_devices_pass_through():
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"


def test_auto_is_cpu_without_cuda_and_the_local_rank_gpu_with_it(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device() == "cuda:1"
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device() == "cuda:0"


@pytest.mark.parametrize("value", ["cpu", "auto"])
def test_result_is_a_valid_torch_device(value):
    import torch

    torch.device(resolve_device(value))
