"""podman's libpod REST API as the local target uses it: kube play, pods, secrets, image pulls.

It goes through the docker SDK's connection to DOCKER_HOST (a unix socket here). Measured on
podman 4.3: `POST /libpod/play/kube` needs `Content-Type: application/yaml` (without it the body
is not read as YAML); a container that fails to start comes back as 200 with `ContainerErrors`;
a failed play leaves its pod behind; `kube down` does not stop a pod gracefully faster than its
10 s stop timeout (terminationGracePeriodSeconds is ignored), so pods are stopped with a short
timeout first. `secretKeyRef` reads a podman secret of that name whose content is a JSON map of
key to base64 value (exactly a Secret's `data`); a `kind: Secret` played through kube play is
stored as YAML and cannot be read back by it, so secrets are created through the secrets API.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import docker
import requests
from django.conf import settings

from integrations.podman.engine import (
    EngineError,
    container_output,
    decode_output,
    one_line,
    ping,
)
from integrations.registries import RegistryAuth

TIMEOUT = 120
API_VERSION = "1.41"  # podman serves its libpod API under any version prefix


class PodmanError(Exception):
    """podman answered with an error; the message is its own."""


def auth_header(auth: RegistryAuth | None) -> dict[str, str]:
    if auth is None or not (auth.username or auth.password):
        return {}
    config = {"username": auth.username, "password": auth.password, "serveraddress": auth.host}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(config).encode()).decode()}


class Podman:
    def __init__(self) -> None:
        # Not integrations.podman.engine.connect(): its version negotiation asks podman's
        # GET /version, which takes about 0.35 s here; one GET /_ping says enough, podman
        # answers it with a Libpod-API-Version header Docker Engine does not send.
        self.address = settings.DOCKER_HOST or "unix:///run/podman/podman.sock"
        try:
            self.api = docker.APIClient(base_url=self.address, version=API_VERSION, timeout=TIMEOUT)
            answer = ping(self.api)
            answer.raise_for_status()
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise EngineError(
                f"image engine unreachable at {self.address}: {one_line(exc)}",
                system=True,
                retryable=True,
            ) from exc
        if "Libpod-API-Version" not in answer.headers:
            raise EngineError(
                f"the local target needs podman (kube play); the engine at {self.address} is not",
                system=True,
            )

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            url = self.api._url(path)  # type: ignore[attr-defined]  # docker-py's private builder
            return self.api.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise EngineError(
                f"image engine unreachable at {self.address}: {one_line(exc)}", system=True
            ) from exc

    @staticmethod
    def message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return one_line(response.text) or f"HTTP {response.status_code}"
        return one_line(body.get("message") or body.get("cause") or body)

    def play(self, manifest: dict, auth: RegistryAuth | None, tls_verify: bool) -> dict:
        headers = {"Content-Type": "application/yaml", **auth_header(auth)}
        response = self.request(
            "POST",
            "/libpod/play/kube",
            params={"tlsVerify": str(tls_verify).lower(), "start": "true"},
            data=json.dumps(manifest),
            headers=headers,
        )
        if response.status_code != 200:
            raise PodmanError(self.message(response))
        report = response.json()
        errors = [e for pod in report.get("Pods") or [] for e in pod.get("ContainerErrors") or []]
        if errors:
            raise PodmanError(one_line(errors[0]))
        return report

    def pods(self, label: str) -> list[dict]:
        filters = json.dumps({"label": [label]})
        response = self.request("GET", "/libpod/pods/json", params={"filters": filters})
        if response.status_code != 200:
            raise PodmanError(self.message(response))
        return response.json() or []

    def stop_pod(self, pod_id: str, timeout: int) -> None:
        self.request("POST", f"/libpod/pods/{pod_id}/stop", params={"t": timeout})

    def remove_pod(self, pod_id: str) -> None:
        self.request("DELETE", f"/libpod/pods/{pod_id}", params={"force": "true"})

    def replace_secret(self, name: str, data: dict[str, str]) -> None:
        self.remove_secret(name)
        response = self.request(
            "POST", "/libpod/secrets/create", params={"name": name}, data=json.dumps(data)
        )
        if response.status_code not in (200, 201):
            raise PodmanError(self.message(response))

    def remove_secret(self, name: str) -> None:
        self.request("DELETE", f"/libpod/secrets/{name}")

    def architecture(self) -> str:
        """The engine host's CPU architecture in Go's words (amd64, arm64), from GET /info."""
        response = self.request("GET", "/libpod/info")
        if response.status_code != 200:
            raise PodmanError(self.message(response))
        return response.json().get("host", {}).get("arch", "")

    def ensure_image(self, image: str, auth: RegistryAuth | None, tls_verify: bool) -> bool:
        """Pulls `image` unless the engine has it; True if it pulled."""
        if self.request("GET", f"/libpod/images/{image}/exists").status_code == 204:
            return False
        response = self.request(
            "POST",
            "/libpod/images/pull",
            params={"reference": image, "tlsVerify": str(tls_verify).lower(), "quiet": "true"},
            headers=auth_header(auth),
        )
        for line in response.text.splitlines():
            with contextlib.suppress(ValueError):
                if error := json.loads(line).get("error"):
                    raise PodmanError(one_line(error))
        if response.status_code != 200:
            raise PodmanError(self.message(response))
        return True

    def container(self, container_id: str) -> dict:
        response = self.request("GET", f"/libpod/containers/{container_id}/json")
        if response.status_code != 200:
            raise PodmanError(self.message(response))
        return response.json()

    def logs(self, container_id: str, tail: int = 20) -> str:
        try:
            frames = container_output(self.api, container_id, follow=False, tail=tail)
        except Exception as exc:  # the container may be gone already
            return f"(no logs: {one_line(exc)})"
        return decode_output(frames).strip()
