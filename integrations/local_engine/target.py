"""The local deploy target: the same manifests as for Kubernetes, played on this machine's
podman (`kube play` through its REST API), so a deployed app really answers on localhost.

What the local target does not have, compared with Kubernetes:
- no Services, DNS or load balancing: an App CD release publishes its port on this machine
  (`hostPort`), so it runs one replica; each environment gets its own host port (the workflow's
  port for the first, the next free one for the others), kept across releases;
- no rolling update: the old pod is stopped (1 s grace, not terminationGracePeriodSeconds)
  before the new one starts, so a deploy has a short gap; the image is pulled first, so a pull
  failure leaves the old release running;
- no readiness or liveness probes inside the engine: the deploy checks readiness once from the
  host (an HTTP GET on the health-check path, or on `/` for any answer), nothing restarts an
  unhealthy container later; a Queues & Workers release is ready when its container stays up;
- no CrashLoopBackOff: podman restarts a crashed container at once, so a release that does not
  become ready is removed (the previous one was stopped before it started: automatic rollback
  plays it again, otherwise the environment runs nothing);
- no namespaces (names carry project and environment instead), no CPU requests (memory limits
  apply), no image pull secrets (credentials go with the pull request instead);
- no CronJob controller: django-q2's scheduler runs a Cron CD release (see `cron.py`), each run
  one container, with the concurrency policy applied per run; no job history beyond the task
  results django-q2 keeps.
"""

from __future__ import annotations

import contextlib
import copy
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.conf import settings

from integrations.errors import Cancelled, ProviderError
from integrations.kubernetes.manifests import (
    INSTANCE_LABEL,
    DeploySpec,
    build_manifests,
    describe,
    object_name,
    workload,
)
from integrations.local_engine.cron import (
    JOB_LABEL,
    CronScheduleError,
    schedule_job,
    unschedule_job,
)
from integrations.local_engine.podman import Podman, PodmanError
from integrations.targets import RolloutFailed, Target

if TYPE_CHECKING:
    from workflows.models import Environment, Workflow

STOP_GRACE_SECONDS = 1
WORKER_SETTLE_SECONDS = 1.0
PORT_SEARCH = 200


class LocalEngineError(ProviderError):
    """podman refused the deploy, or no host port is free for it."""


def local_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """What podman gets of a Kubernetes manifest: no probes (podman would turn them into
    healthchecks that run commands inside the image) and no pull secrets."""
    out = copy.deepcopy(manifest)
    spec = out.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    pod = template["spec"] if template else out["spec"]
    pod.pop("imagePullSecrets", None)
    for container in pod.get("containers", []):
        container.pop("livenessProbe", None)
        container.pop("readinessProbe", None)
    return out


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def ports_in_use(others: Iterable[Any]) -> set[int]:
    """Host ports of what the other local releases run now."""
    return {r.details["host_port"] for r in others if r.details.get("host_port")}


class LocalTarget(Target):
    kind = "local"

    def open(self) -> str:
        self.podman = Podman()
        self.ready_seconds = settings.DEPLOY_LOCAL_READY_SECONDS
        return self.podman.address

    def describe(self) -> str:
        return f"the local engine (podman at {self.address})"

    def architectures(self) -> set[str]:
        """The one architecture this machine's engine runs (it emulates no other for pods)."""
        try:
            return {self.podman.architecture()} - {""}
        except PodmanError as exc:
            raise LocalEngineError(f"the local engine did not say its architecture: {exc}") from exc

    def object_name(self, workflow: Workflow, environment: Environment) -> str:
        service = workflow.service
        base = service.name if workflow.is_default else object_name(service.name, workflow.name)
        return object_name(service.project.name, base, environment.name)

    def prepare(
        self, spec: DeploySpec, current: Any, others: Callable[[], Iterable[Any]]
    ) -> DeploySpec:
        if not spec.port:
            return spec
        if spec.replicas > 1:
            self.log(f"The local engine runs 1 replica, not {spec.replicas}: one host port")
        port = (current.details.get("host_port") if current else None) or self.free_port(
            spec, ports_in_use(others())
        )
        return replace(spec, replicas=1, host_port=port, host_ip=settings.DEPLOY_LOCAL_HOST_IP)

    def free_port(self, spec: DeploySpec, taken: set[int]) -> int:
        assert spec.port is not None  # prepare() asks only for a spec with a port
        for port in range(spec.port, min(spec.port + PORT_SEARCH, 65536)):
            if port not in taken and port_is_free(port):
                return port
        raise LocalEngineError(f"no free host port from {spec.port} for {spec.name}")

    def deploy(self, spec: DeploySpec) -> dict[str, Any]:
        manifests = build_manifests(spec)
        try:
            pulled = self.podman.ensure_image(
                spec.image, spec.pull_auth, not spec.registry_insecure
            )
        except PodmanError as exc:
            raise LocalEngineError(f"ErrImagePull: {exc}; nothing was changed") from exc
        if pulled:
            self.log(f"Pulled {spec.image}")
        self.check_cancelled()
        self.sync_secrets(manifests)
        main = local_manifest(workload(manifests))
        objects = [describe(m) for m in manifests if m["kind"] != "Service"]
        if main["kind"] == "CronJob":
            return {"objects": objects, **self.schedule(spec, main)}
        self.remove_pods(spec.name)
        try:
            report = self.podman.play(main, spec.pull_auth, not spec.registry_insecure)
        except PodmanError as exc:
            self.remove_pods(spec.name)
            raise RolloutFailed(f"podman could not start {spec.name}: {exc}") from exc
        containers = [c for pod in report.get("Pods") or [] for c in pod.get("Containers") or []]
        self.log(f"Played {describe(main)} on podman: {len(containers)} container(s)")
        try:
            self.wait_ready(spec, containers)
        except RolloutFailed:
            # podman restarts a crashed container at once, with no CrashLoopBackOff delay: a
            # failed release left in place would restart every second for ever.
            self.remove_pods(spec.name)
            raise
        details: dict[str, Any] = {"objects": objects}
        if spec.host_port:
            details.update(host_port=spec.host_port, url=f"http://127.0.0.1:{spec.host_port}/")
        return details

    def restore(self, spec: DeploySpec | None, name: str) -> None:
        """Puts back `spec` without waiting for it, or with nothing to put back removes it."""
        if spec is None:
            self.remove_pods(name)
            self.unschedule()
            return
        if spec.pipeline_type == "cron_cd":
            self.deploy(spec)
            return
        self.remove_pods(spec.name)
        manifest = local_manifest(workload(build_manifests(spec)))
        self.podman.play(manifest, spec.pull_auth, not spec.registry_insecure)

    def sync_secrets(self, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            if manifest["kind"] == "Secret" and manifest.get("type") == "Opaque":
                self.podman.replace_secret(manifest["metadata"]["name"], manifest["data"])
                self.log(f"Created podman secret {manifest['metadata']['name']}")

    def remove_pods(self, name: str) -> None:
        for pod in self.podman.pods(f"{INSTANCE_LABEL}={name}"):
            self.podman.stop_pod(pod["Id"], STOP_GRACE_SECONDS)
            self.podman.remove_pod(pod["Id"])
            self.log(f"Removed pod {pod['Name']}")

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def wait_ready(self, spec: DeploySpec, containers: list[str]) -> None:
        deadline = time.monotonic() + self.ready_seconds
        up_since = time.monotonic()
        url = f"http://127.0.0.1:{spec.host_port}{spec.health_check_path or '/'}"
        last = "no answer yet"
        while True:
            self.check_cancelled()
            for container_id in containers:
                state = self.podman.container(container_id).get("State", {})
                if not state.get("Running"):
                    logs = self.podman.logs(container_id)
                    code = state.get("ExitCode")
                    raise RolloutFailed(
                        f"CrashLoopBackOff: {spec.name} exited with code {code}"
                        + (f": {logs.splitlines()[-1]}" if logs else "")
                    )
            if spec.host_port:
                ok, last = self.answers(url, strict=bool(spec.health_check_path))
                if ok:
                    self.log(f"{url} answers")
                    return
            if not spec.host_port and time.monotonic() - up_since >= WORKER_SETTLE_SECONDS:
                self.log(f"{spec.name} is running")
                return
            if time.monotonic() > deadline:
                what = f"{url} did not answer ({last})" if spec.host_port else "did not stay up"
                raise RolloutFailed(
                    f"{spec.name} not ready: {what} within {self.ready_seconds} s"
                    + self.last_log_line(containers)
                )
            self.cancelled.wait(0.05)

    def last_log_line(self, containers: list[str]) -> str:
        """The app's last log line, as a clause to end a failure reason with, or ""."""
        for container_id in reversed(containers):
            with contextlib.suppress(PodmanError):
                lines = self.podman.logs(container_id).strip().splitlines()
                if lines:
                    return f"; it last printed: {lines[-1][:200]}"
        return ""

    @staticmethod
    def answers(url: str, strict: bool) -> tuple[bool, str]:
        """Whether `url` answers, and what the attempt got ("connection refused", "HTTP 503", ...).

        Any HTTP answer means listening; a health-check path must answer 2xx or 3xx."""
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status < 400, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return not strict and exc.code < 500, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return False, str(getattr(reason, "strerror", None) or reason)

    def schedule(self, spec: DeploySpec, cron: dict[str, Any]) -> dict[str, Any]:
        template = cron["spec"]["jobTemplate"]["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"labels": {**template["metadata"]["labels"], JOB_LABEL: spec.name}},
            "spec": template["spec"],
        }
        try:
            name = schedule_job(self.workflow, self.environment, spec.cron_schedule, spec.time_zone)
        except CronScheduleError as exc:
            raise RolloutFailed(f"cannot schedule {spec.name}: {exc}") from exc
        self.log(f"Scheduled {spec.name}: '{spec.cron_schedule}' in {spec.time_zone} ({name})")
        return {"schedule": name, "job_pod": pod, "concurrency": spec.cron_concurrency}

    def unschedule(self) -> None:
        with contextlib.suppress(Exception):
            unschedule_job(self.workflow, self.environment)
