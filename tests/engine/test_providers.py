"""Execution-provider selection, fallback and error reporting, on the CPU-only onnxruntime."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from sam2_annotator.engine import providers
from sam2_annotator.engine.providers import (
    SessionConfig,
    available_providers,
    create_session,
    describe_providers,
    parse_provider_list,
    resolve_providers,
)
from sam2_annotator.errors import ModelError, UserError

REAL_SESSION = ort.InferenceSession
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-node Identity graph, ``x`` (float, [2, 3]) -> ``y``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "identity.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture
def claim_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the installed build offers CUDA (it does not: sessions would really be CPU)."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])


def _run_identity(session: ort.InferenceSession) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_array_equal(y, x)


# --------------------------------------------------------------------------- names


def test_available_on_this_build_is_cpu_only() -> None:
    # The installed wheel also lists AzureExecutionProvider, which we do not offer.
    assert "CPUExecutionProvider" in ort.get_available_providers()
    assert available_providers() == ["cpu"]


def test_available_maps_and_orders_ort_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ort,
        "get_available_providers",
        lambda: [CPU, "OpenVINOExecutionProvider", "DmlExecutionProvider", "Unknown"],
    )
    assert available_providers() == ["directml", "openvino", "cpu"]


def test_parse_provider_list_normalises() -> None:
    assert parse_provider_list("cuda,cpu") == ["cuda", "cpu"]
    assert parse_provider_list(" DML , cpu,cpu ") == ["directml", "cpu"]
    assert parse_provider_list("Auto") == ["auto"]


@pytest.mark.parametrize("text", ["cuda,vulkan", "", " , "])
def test_parse_provider_list_rejects(text: str) -> None:
    with pytest.raises(UserError) as info:
        parse_provider_list(text)
    message = str(info.value)
    for name in ("cuda", "tensorrt", "directml", "coreml", "openvino", "cpu", "auto"):
        assert name in message
    if "vulkan" in text:
        assert "'vulkan'" in message


def test_session_config_validates() -> None:
    assert SessionConfig().providers == ("auto",)
    assert SessionConfig(providers=("DML", "cpu")).providers == ("directml", "cpu")
    assert SessionConfig(providers="cuda, cpu").providers == ("cuda", "cpu")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown execution provider 'gpu'"):
        SessionConfig(providers=("gpu",))
    with pytest.raises(UserError, match="thread count"):
        SessionConfig(threads=-1)


def test_describe_providers_names_everything_and_what_is_available() -> None:
    text = describe_providers()
    for name in ("cuda", "tensorrt", "directml", "dml", "coreml", "openvino", "cpu", "auto"):
        assert name in text
    assert text.splitlines()[-1].endswith("available in this onnxruntime build: cpu")


# --------------------------------------------------------------------------- resolution


def test_auto_picks_available_in_preference_order_without_warning(caplog) -> None:
    available = ["tensorrt", "cuda", "openvino", "cpu"]
    with caplog.at_level(logging.WARNING, logger=providers.__name__):
        assert resolve_providers(["auto"], available) == ["cuda", "openvino", "cpu"]
    assert caplog.records == []


def test_explicit_order_is_kept_and_cpu_goes_last() -> None:
    available = ["cuda", "openvino", "cpu"]
    assert resolve_providers(["cpu", "openvino", "cuda"], available) == ["openvino", "cuda", "cpu"]
    assert resolve_providers(["openvino", "auto"], available) == ["openvino", "cuda", "cpu"]


def test_tensorrt_brings_cuda_along() -> None:
    assert resolve_providers(["tensorrt"], ["tensorrt", "cuda", "cpu"]) == [
        "tensorrt",
        "cuda",
        "cpu",
    ]
    assert resolve_providers(["tensorrt"], ["tensorrt", "cpu"]) == ["tensorrt", "cpu"]


def test_missing_providers_are_skipped_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=providers.__name__):
        assert resolve_providers(["coreml", "cuda", "cpu"], ["cpu"]) == ["cpu"]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "coreml, cuda" in record.getMessage()


# --------------------------------------------------------------------------- sessions


def test_cpu_session_runs(identity_model: Path) -> None:
    loaded = create_session(identity_model)
    assert loaded.provider == "cpu"
    assert loaded.requested == ("auto",)
    assert loaded.attempted == ("cpu",)
    assert not loaded.fell_back
    assert loaded.path == identity_model
    _run_identity(loaded.session)


def test_requesting_unavailable_cuda_runs_on_cpu_with_warning(identity_model: Path, caplog):
    with caplog.at_level(logging.WARNING, logger=providers.__name__):
        loaded = create_session(identity_model, SessionConfig(providers=("cuda", "cpu")))
    assert loaded.provider == "cpu"
    assert loaded.session.get_providers()[0] == CPU
    assert loaded.requested == ("cuda", "cpu")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cuda" in message and "not available" in message for message in warnings)
    _run_identity(loaded.session)


def test_session_options_reach_the_session(identity_model: Path) -> None:
    loaded = create_session(identity_model, SessionConfig(providers=("cpu",), threads=3))
    options = loaded.session.get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    default = create_session(identity_model, SessionConfig(providers=("cpu",)))
    assert default.session.get_session_options().intra_op_num_threads == 0


def test_failure_on_accelerator_retries_on_cpu(
    identity_model: Path, claim_cuda, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    calls: list[list[str]] = []

    def session_failing_on_cuda(path, sess_options=None, providers=None, **kwargs):
        calls.append(list(providers))
        if CUDA in providers:
            raise ort_state.EPFail("CUDA failure 100: no CUDA-capable device is detected")
        return REAL_SESSION(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session_failing_on_cuda)
    with caplog.at_level(logging.WARNING, logger=providers.__name__):
        loaded = create_session(identity_model, SessionConfig(providers=("auto",), threads=2))

    assert calls == [[CUDA, CPU], [CPU]]
    assert loaded.provider == "cpu"
    assert loaded.attempted == ("cuda", "cpu")
    assert loaded.fell_back
    assert loaded.session.get_session_options().intra_op_num_threads == 2
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "retrying on CPU" in record.getMessage()
    assert "no CUDA-capable device" in record.getMessage()
    _run_identity(loaded.session)


def test_provider_dropped_by_onnxruntime_is_reported(identity_model: Path, claim_cuda, caplog):
    # We believe CUDA is available and hand it over; the real CPU-only runtime ignores it.
    with (
        caplog.at_level(logging.WARNING, logger=providers.__name__),
        pytest.warns(UserWarning, match="CUDAExecutionProvider"),  # onnxruntime's own notice
    ):
        loaded = create_session(identity_model, SessionConfig(providers=("cuda",)))
    assert loaded.attempted == ("cuda", "cpu")
    assert loaded.provider == "cpu"
    assert loaded.fell_back
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("asked for cuda" in m and "runs it on cpu" in m for m in warnings)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found: .*absent\.onnx"):
        create_session(tmp_path / "absent.onnx")


def test_folder_instead_of_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="folder"):
        create_session(tmp_path)


def test_corrupt_model_file_is_a_model_error_without_retry(
    tmp_path: Path, claim_cuda, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07definitely not protobuf" * 10)
    calls: list[list[str]] = []

    def counting_session(path, sess_options=None, providers=None, **kwargs):
        calls.append(list(providers))
        # The CUDA name is dropped so that the real (CPU-only) runtime parses the file.
        return REAL_SESSION(path, sess_options=sess_options, providers=[CPU], **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting_session)
    with (
        caplog.at_level(logging.WARNING, logger=providers.__name__),
        pytest.raises(ModelError) as info,
    ):
        create_session(path, SessionConfig(providers=("cuda",)))
    message = str(info.value)
    assert "broken.onnx" in message and "not a valid ONNX file" in message
    assert "\n" not in message
    assert calls == [[CUDA, CPU]]  # a broken file is not retried on CPU
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_truncated_model_file(identity_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    data = identity_model.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"truncated\.onnx"):
        create_session(path)


def test_runtime_failure_on_cpu_alone_is_a_model_error(
    identity_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_session(*args, **kwargs):
        raise ort_state.Fail("Unsupported model IR version: 99")

    monkeypatch.setattr(ort, "InferenceSession", failing_session)
    with pytest.raises(ModelError, match=r"identity\.onnx.*Unsupported model IR version: 99"):
        create_session(identity_model)
