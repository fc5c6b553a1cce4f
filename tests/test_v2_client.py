"""The client's operator token: sent on repository calls only, read from the environment; a
server that refuses load and unload is found out before anything changes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from santander.v2_client import ADMIN_TOKEN_ENV, ClientError, V2Client


class _Recorder(BaseHTTPRequestHandler):
    """Answers like the image's front: load and unload only with the right token."""
    seen: list[tuple[str, str | None]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorization = self.headers.get("Authorization")
        self.seen.append((self.path, authorization))
        if "/v2/repository/models/" in self.path and authorization != "Bearer right":
            self._answer(403, {"error": "load and unload answer only the operator"})
        elif "/v2/repository/models/" in self.path:
            self._answer(404, {"error": "model not found"})
        else:
            self._answer(200, [])

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def front():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_token_goes_only_to_repository_calls_and_comes_from_the_environment(front,
                                                                               monkeypatch):
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "right")
    client = V2Client(front)
    client.call("POST", "/v2/models/xgboost-model/infer", {})
    client.call("POST", "/v2/repository/index", {})
    client.may_change()
    assert _Recorder.seen == [("/v2/models/xgboost-model/infer", None),
                              ("/v2/repository/index", "Bearer right"),
                              ("/v2/repository/models/santander-permission-probe/unload",
                               "Bearer right")]


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_server_refusing_load_and_unload_is_one_error_naming_the_token(front, monkeypatch,
                                                                         token):
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    with pytest.raises(ClientError, match="HTTP 403 .*only the operator"):
        V2Client(front, token=token).may_change()
