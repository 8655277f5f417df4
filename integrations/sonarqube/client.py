"""A client for the parts of SonarQube's Web API a run needs: the Compute Engine task an analysis
became (`GET /api/ce/task`) and the quality gate of an analysis or project
(`GET /api/qualitygates/project_status`).

Settings: SONARQUBE_URL (required), SONARQUBE_TOKEN (a user or project analysis token with
Browse permission; sent as the Basic-auth login with an empty password, which every SonarQube
version accepts). No SonarQube server can be installed on the machines these tests run on, so
`tests/scans/sonarqube_double.py`, a double of these endpoints, stands in for one there.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings

from integrations.errors import Cancelled, ProviderError

NOT_CONFIGURED = "SonarQube is not configured (set SONARQUBE_URL and SONARQUBE_TOKEN)"
# Compute Engine task states that will not change any more.
TASK_DONE = {"SUCCESS", "FAILED", "CANCELED"}


class SonarQubeError(ProviderError):
    """SonarQube is not set up, unreachable, or refused; or sonar-scanner failed."""


class SonarQube:
    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> SonarQube:
        url = settings.SONARQUBE_URL
        if not url:
            raise SonarQubeError(NOT_CONFIGURED, system=True)
        return cls(url, settings.SONARQUBE_TOKEN)

    def get(self, path: str, **params: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}")
        request.add_header("Accept", "application/json")
        if self.token:
            basic = base64.b64encode(f"{self.token}:".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise self.refusal(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SonarQubeError(
                f"SonarQube unreachable at {self.url}: {reason}", system=True, retryable=True
            ) from exc
        except ValueError as exc:
            raise SonarQubeError(f"SonarQube at {self.url} answered {path} with no JSON") from exc

    def refusal(self, exc: urllib.error.HTTPError) -> SonarQubeError:
        try:
            messages = [e["msg"] for e in json.loads(exc.read())["errors"]]
        except (ValueError, KeyError, TypeError):
            messages = []
        detail = "; ".join(messages) or exc.reason
        if exc.code == 401:
            return SonarQubeError(
                "SonarQube refused the token (401): check SONARQUBE_TOKEN", system=True
            )
        if exc.code == 403:
            return SonarQubeError(
                f"SonarQube: the token may not browse this project (403): {detail}"
            )
        if exc.code == 404:
            return SonarQubeError(f"SonarQube: {detail}")
        return SonarQubeError(f"SonarQube answered {exc.code}: {detail}", system=exc.code >= 500)

    def quality_gate(self, *, project_key: str = "", analysis_id: str = "") -> dict[str, Any]:
        """`projectStatus`: `status` OK, WARN (old servers), ERROR or NONE, and `conditions`
        (each with status, metricKey, comparator, errorThreshold, actualValue)."""
        params = {"analysisId": analysis_id} if analysis_id else {"projectKey": project_key}
        return self.get("/api/qualitygates/project_status", **params).get("projectStatus") or {}

    def wait_for_task(
        self, task_id: str, cancelled: threading.Event, poll: float = 1.0
    ) -> dict[str, Any]:
        """Polls the Compute Engine task an upload became until it ends; returns it. The stage
        timeout bounds the wait: it sets `cancelled`."""
        while True:
            task = self.get("/api/ce/task", id=task_id).get("task") or {}
            if task.get("status") in TASK_DONE:
                break
            if cancelled.wait(poll):
                raise Cancelled()
        if task["status"] != "SUCCESS":
            detail = task.get("errorMessage") or task["status"].lower()
            raise SonarQubeError(f"SonarQube could not process the analysis: {detail}")
        return task
