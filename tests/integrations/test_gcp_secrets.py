"""GCP Secret Manager: the real REST client against a small double of its `:access` endpoint
(a stdlib HTTP server named as a double: no Google endpoint is reachable here)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.gcp_secrets import client

TOKEN = "ya29.test-token"
SECRETS = {"projects/p1/secrets/npm/versions/latest": "gcp-held-secret-41c2"}


class SecretManagerDouble(BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.removeprefix("/v1/").removesuffix(":access")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        if name not in SECRETS:
            return self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        data = base64.b64encode(SECRETS[name].encode()).decode()
        return self.answer(200, {"name": name, "payload": {"data": data}})

    def answer(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def double(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SecretManagerDouble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(client, "API", f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()


def test_reads_the_latest_version(double, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    assert client.read_secret("projects/p1/secrets/npm") == "gcp-held-secret-41c2"


def test_missing_secret_and_bad_token_are_clear(double, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    with pytest.raises(client.GcpSecretsError) as missing:
        client.read_secret("projects/p1/secrets/nope")
    assert missing.value.message == (
        "GCP Secret Manager: cannot read 'projects/p1/secrets/nope' (HTTP 404)"
    )
    assert not missing.value.system
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "wrong")
    with pytest.raises(client.GcpSecretsError, match=r"HTTP 401"):
        client.read_secret("projects/p1/secrets/npm")


def test_no_token_is_a_system_error(monkeypatch):
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    with pytest.raises(client.GcpSecretsError) as error:
        client.read_secret("projects/p1/secrets/npm")
    assert error.value.system
