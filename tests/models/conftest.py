"""Tiny ONNX graphs in our (samexporter) contract, zips of them, and a local HTTP server."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from sam2_annotator.models.catalog import DATA_DIR_ENV, MIRROR_ENV

FLOAT = TensorProto.FLOAT
ENCODER_OUTPUTS = ("high_res_feats_0", "high_res_feats_1", "image_embed")
DECODER_INPUTS = {
    "image_embed": 4,
    "high_res_feats_0": 4,
    "high_res_feats_1": 4,
    "point_coords": 3,
    "point_labels": 2,
    "mask_input": 4,
    "has_mask_input": 1,
}


def _symbolic(prefix: str, rank: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(rank)]


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any ONNX Runtime we support
    onnx.checker.check_model(model)
    return model.SerializeToString()


def encoder_bytes() -> bytes:
    """``image`` -> the three feature maps (Identity: only names and ranks matter here)."""
    image = helper.make_tensor_value_info("image", FLOAT, [1, 3, "h", "w"])
    outputs = [helper.make_tensor_value_info(n, FLOAT, _symbolic(n, 4)) for n in ENCODER_OUTPUTS]
    nodes = [helper.make_node("Identity", ["image"], [n]) for n in ENCODER_OUTPUTS]
    return _model(helper.make_graph(nodes, "tiny_encoder", [image], outputs))


def decoder_bytes(*, drop_input: str | None = None) -> bytes:
    """The decoder's seven inputs -> ``masks``, ``iou_predictions``. ``drop_input`` makes a graph
    that no contract accepts."""
    inputs = [
        helper.make_tensor_value_info(n, FLOAT, _symbolic(n, rank))
        for n, rank in DECODER_INPUTS.items()
        if n != drop_input
    ]
    outputs = [
        helper.make_tensor_value_info("masks", FLOAT, _symbolic("masks", 4)),
        helper.make_tensor_value_info("iou_predictions", FLOAT, _symbolic("iou", 2)),
    ]
    assert drop_input not in ("image_embed", "point_labels"), "the graph's nodes read these"
    nodes = [
        helper.make_node("Identity", ["image_embed"], ["masks"]),
        helper.make_node("Identity", ["point_labels"], ["iou_predictions"]),
    ]
    return _model(helper.make_graph(nodes, "tiny_decoder", inputs, outputs))


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def pair() -> dict[str, bytes]:
    return {"m.encoder.onnx": encoder_bytes(), "m.decoder.onnx": decoder_bytes()}


@pytest.fixture
def model_folder(tmp_path: Path, pair: dict[str, bytes]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in pair.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated data dir (and no mirror from the developer's environment)."""
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return root


# --------------------------------------------------------------------------- HTTP server


@dataclass
class FileServer:
    """What the handler serves and how it misbehaves; ``requests`` records (path, Range)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    ignore_range: bool = False
    #: path -> bytes to send before dropping the connection (Content-Length stays the full size).
    cut_after: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    #: Set to make the handler pause mid-body until the test releases it.
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return f"{self.url}/{path}"


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return None

        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            range_header = self.headers.get("Range")
            server.requests.append((path, range_header))
            if server.delay_s:
                time.sleep(server.delay_s)
            data = server.files.get(path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if range_header and not server.ignore_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cut = server.cut_after.get(path)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            if server.hold is not None:
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                server.holding.set()
                server.hold.wait(5)
                body = body[half:]
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if server.hold is not None:
            server.hold.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
