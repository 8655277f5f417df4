"""A double of SonarQube's Web API for tests: NOT SonarQube, a small stdlib HTTP server that
answers the endpoints the scan stage calls, in SonarQube's shapes. No SonarQube server can be
installed on this machine kind (none in apt, PyPI or npm).

What it does, as SonarQube does:
- a token as the Basic-auth login with an empty password; a missing or wrong one answers 401
  with an empty body;
- `GET /api/qualitygates/project_status?projectKey=` (the gate of the project's last analysis)
  or `?analysisId=`: `{"projectStatus": {"status", "ignoredConditions", "conditions": [...]}}`;
  an unknown project or analysis answers 404 `{"errors": [{"msg": ...}]}`, neither parameter
  400;
- `POST /api/ce/submit?projectKey=` takes an analysis (the real one takes the scanner's
  multipart report; here a JSON body, recorded) and returns `{"taskId", "projectId"}`;
  `GET /api/ce/task?id=` shows the task PENDING, then IN_PROGRESS, then SUCCESS with its
  `analysisId`, each after `processing_delay` seconds.

What it does not: analyse code, compute measures, branches, pull requests, any other endpoint.
The gate each project gets is set by the test with `set_gate(key, status, conditions)`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class SonarQubeDouble:
    def __init__(self, token: str, processing_delay: float = 0.2):
        self.token = token
        self.processing_delay = processing_delay
        self.gates: dict[str, dict[str, Any]] = {}
        self.analyses: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> SonarQubeDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_gate(self, key: str, status: str, conditions: list[dict] | None = None) -> None:
        """The quality gate the project's last (and next) analysis gets."""
        with self.lock:
            self.gates[key] = {
                "status": status,
                "ignoredConditions": False,
                "conditions": conditions or [],
            }

    def task_status(self, task: dict[str, Any]) -> str:
        steps = int((time.monotonic() - task["submitted"]) / self.processing_delay)
        return ("PENDING", "IN_PROGRESS", "SUCCESS")[min(steps, 2)]

    def answer(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if method == "POST" and path == "/api/ce/submit":
                key = query.get("projectKey", "")
                task_id = f"AY{uuid.uuid4().hex[:18]}"
                analysis_id = f"AX{uuid.uuid4().hex[:18]}"
                self.analyses[analysis_id] = {"project": key, **self.gates.get(key, {})}
                self.tasks[task_id] = {
                    "id": task_id,
                    "type": "REPORT",
                    "componentKey": key,
                    "analysisId": analysis_id,
                    "submitted": time.monotonic(),
                    "body": json.loads(body or b"{}"),
                }
                return 200, {"taskId": task_id, "projectId": key}
            if method == "GET" and path == "/api/ce/task":
                task = self.tasks.get(query.get("id", ""))
                if task is None:
                    return 404, {
                        "errors": [{"msg": f"No activity found for task '{query.get('id')}'"}]
                    }
                status = self.task_status(task)
                shown = {k: task[k] for k in ("id", "type", "componentKey")} | {"status": status}
                if status == "SUCCESS":
                    shown["analysisId"] = task["analysisId"]
                return 200, {"task": shown}
            if method == "GET" and path == "/api/qualitygates/project_status":
                if "analysisId" in query:
                    gate = self.analyses.get(query["analysisId"])
                    missing = f"Analysis with id '{query['analysisId']}' is not found"
                elif "projectKey" in query:
                    gate = self.gates.get(query["projectKey"])
                    missing = f"Project '{query['projectKey']}' not found"
                else:
                    message = "Either 'analysisId', 'projectId' or 'projectKey' must be provided"
                    return 400, {"errors": [{"msg": message}]}
                if not gate:
                    return 404, {"errors": [{"msg": missing}]}
                return 200, {"projectStatus": {k: v for k, v in gate.items() if k != "project"}}
            return 404, {"errors": [{"msg": f"Unknown url : {path}"}]}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.serve("GET")

            def do_POST(self) -> None:
                self.serve("POST")

            def serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "Basic " + base64.b64encode(f"{double.token}:".encode()).decode()
                authorized = self.headers.get("Authorization") == expected
                with double.lock:
                    double.requests.append(
                        {"method": method, "path": parts.path, "query": query, "auth": authorized}
                    )
                if not authorized:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code, payload = double.answer(method, parts.path, query, body)
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
