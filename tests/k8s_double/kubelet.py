"""The double's pod runner: plays a pod applied to the double on podman, as a kubelet would run
it, so a build pod's path can be tested end to end. NOT a kubelet: it runs the init containers
then the containers one after another (no sidecars, no restarts, no probes), each as a podman
container with the same image, command and args, env (literal values and secretKeyRef read from
the double's Secrets) and volume mounts. emptyDir and generic ephemeral volumes are host
directories owned by the pod's runAsUser/fsGroup (the ephemeral volume's requested size is
recorded, not enforced); secret volumes are files written with defaultMode.

The security context is honoured as a container runtime would apply it, container fields over
the pod's: runAsUser/runAsGroup become the container's user, capabilities add/drop become
podman's cap-add/cap-drop (podman's default set stands for the runtime's default, which has
SETUID and SETGID as containerd's and CRI-O's do), privileged becomes --privileged, a
seccompProfile or appArmorProfile of type Unconfined becomes seccomp=unconfined /
apparmor=unconfined (RuntimeDefault keeps podman's profiles; Localhost profiles are refused),
allowPrivilegeEscalation false becomes no-new-privileges, readOnlyRootFilesystem a read-only
root; runAsNonRoot with user 0 fails the pod (CreateContainerConfigError), as the kubelet does,
and so does runAsNonRoot with no runAsUser (the kubelet would accept an image whose USER is a
non-zero uid; the double does not read the image's USER).

Every pod shares this machine's network, as a `hostNetwork` pod would: the registries and git
server the tests use listen on loopback, where a cluster's pods would reach them by name.
Scheduling (nodeSelector, affinity, tolerations) is not played: the double has no nodes to place
pods on. The pod's status (phase, init/container statuses with exit codes) follows the
containers; the log is podman's, served by the double at .../pods/<name>/log.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
import threading
from typing import Any

import docker

from tests.k8s_double.server import now


class Kubelet:
    def __init__(self, double, docker_host: str):
        self.double = double
        self.engine = docker.DockerClient(base_url=docker_host, timeout=120)
        self.running: dict[tuple[str, str], dict[str, Any]] = {}

    def container_name(self, ns: str, pod: str, container: str) -> str:
        return f"k8sdouble-{ns}-{pod}-{container}"

    def start(self, ns: str, pod: dict) -> None:
        key = (ns, pod["metadata"]["name"])
        state = {"root": tempfile.mkdtemp(prefix="k8sdouble-"), "stopped": threading.Event()}
        self.running[key] = state
        threading.Thread(target=self.play, args=(ns, pod, state), daemon=True).start()

    def volumes(self, ns: str, pod: dict, root: str) -> dict[str, str]:
        spec = pod["spec"]
        security = spec.get("securityContext") or {}
        uid, gid = security.get("runAsUser", 0), security.get("fsGroup", 0)
        paths = {}
        for volume in spec.get("volumes", []):
            path = os.path.join(root, volume["name"])
            os.makedirs(path)
            if "secret" in volume:
                secret = self.double.get("Secret", ns, volume["secret"]["secretName"]) or {}
                mode = volume["secret"].get("defaultMode", 0o644)
                for name, value in (secret.get("data") or {}).items():
                    file = os.path.join(path, name)
                    with open(file, "wb") as handle:
                        handle.write(base64.b64decode(value))
                    os.chmod(file, mode)
                    os.chown(file, 0, gid)
            else:  # emptyDir, ephemeral
                os.chown(path, uid, gid)
                os.chmod(path, 0o2775)
            os.chmod(root, 0o755)
            paths[volume["name"]] = path
        return paths

    def env(self, ns: str, container: dict) -> dict[str, str]:
        values = {}
        for var in container.get("env", []):
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = self.double.get("Secret", ns, ref["name"]) or {}
                raw = (secret.get("data") or {}).get(ref["key"], "")
                values[var["name"]] = base64.b64decode(raw).decode()
            else:
                values[var["name"]] = var.get("value", "")
        return values

    def play(self, ns: str, pod: dict, state: dict) -> None:
        name, spec = pod["metadata"]["name"], pod["spec"]
        try:
            paths = self.volumes(ns, pod, state["root"])
        except OSError as exc:
            self.set_status(
                ns, name, {"phase": "Failed", "reason": "VolumeError", "message": str(exc)}
            )
            return
        groups = [
            ("initContainerStatuses", spec.get("initContainers", [])),
            ("containerStatuses", spec["containers"]),
        ]
        self.set_status(ns, name, {"phase": "Pending"})
        for field, containers in groups:
            for container in containers:
                if state["stopped"].is_set():
                    return
                if field == "containerStatuses":
                    self.set_status(ns, name, {"phase": "Running"})
                try:
                    options = security_options(spec, container)
                except ValueError as exc:
                    self.set_status(
                        ns,
                        name,
                        {
                            "phase": "Failed",
                            "reason": "CreateContainerConfigError",
                            "message": str(exc),
                        },
                    )
                    return
                code = self.run_container(ns, name, container, paths, options, field, state)
                if code != 0:
                    if not state["stopped"].is_set():
                        self.set_status(ns, name, {"phase": "Failed"})
                    return
        if not state["stopped"].is_set():
            self.set_status(ns, name, {"phase": "Succeeded"})

    def run_container(self, ns, pod_name, container, paths, options, field, state) -> int:
        cname = self.container_name(ns, pod_name, container["name"])
        mounts = {
            paths[m["name"]]: {"bind": m["mountPath"], "mode": "ro" if m.get("readOnly") else "rw"}
            for m in container.get("volumeMounts", [])
        }
        running = self.engine.containers.run(
            container["image"],
            command=[*container.get("command", []), *container.get("args", [])] or None,
            environment=self.env(ns, container),
            volumes=mounts,
            name=cname,
            detach=True,
            network_mode="host",
            **options,
        )
        self.container_status(ns, pod_name, field, container, {"running": {"startedAt": now()}})
        result = running.wait()
        code = int(result.get("StatusCode", 1))
        self.container_status(
            ns,
            pod_name,
            field,
            container,
            {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": now(),
                    "finishedAt": now(),
                }
            },
        )
        return code

    def set_status(self, ns: str, name: str, values: dict) -> None:
        with self.double.lock:
            pod = self.double.objects.get(("pods", ns, name))
            if pod is not None:
                pod.setdefault("status", {}).update(values)

    def container_status(self, ns, name, field, container, state: dict) -> None:
        with self.double.lock:
            pod = self.double.objects.get(("pods", ns, name))
            if pod is None:
                return
            statuses = pod.setdefault("status", {}).setdefault(field, [])
            statuses[:] = [s for s in statuses if s["name"] != container["name"]]
            statuses.append(
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": container["image"],
                    "ready": "running" in state,
                    "restartCount": 0,
                    "state": state,
                }
            )

    def logs(self, ns: str, name: str, container: str, follow: bool):
        """podman's log of the pod's container, as bytes chunks; followed, it ends when the
        container has exited, as a kubelet's does."""
        found = self.engine.containers.get(self.container_name(ns, name, container))
        if not follow:
            return found.logs(stream=True, follow=False)
        return self.follow_logs(found)

    def follow_logs(self, found):
        """podman 4.3 sometimes keeps a `logs --follow` stream open after the container exited
        (seen here: a multi-arch build pod's stream, 20 minutes after its exit; the Script
        stage works around the same, executions/runners/script.py). A second connection waits
        for the exit and closes a stream still open 2 s later; the rest is read without
        following."""
        stream = found.logs(stream=True, follow=True)
        ended, closed = threading.Event(), threading.Event()

        def watch() -> None:
            with contextlib.suppress(Exception):  # removed with its pod: the stream ends too
                self.engine.api.wait(found.id, timeout=None)
            if not ended.wait(2):
                closed.set()
                stream.close()

        threading.Thread(target=watch, name=f"logs-{found.name}", daemon=True).start()

        def chunks():
            sent = 0
            try:
                for chunk in stream:
                    sent += len(chunk)
                    yield chunk
            except Exception:
                if not closed.is_set():
                    raise
            ended.set()
            if closed.is_set():
                rest = found.logs(stream=False, follow=False)[sent:]
                if rest:
                    yield rest

        return chunks()

    def interrupt(self, ns: str, name: str) -> None:
        """As a spot node's shutdown does: the containers are killed, the pod fails with a
        DisruptionTarget condition (TerminationByKubelet)."""
        state = self.running.get((ns, name))
        if state is not None:
            state["stopped"].set()
        self.kill(ns, name)
        self.set_status(
            ns,
            name,
            {
                "phase": "Failed",
                "reason": "Terminated",
                "message": "Pod was terminated in response to imminent node shutdown.",
                "conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
                ],
            },
        )

    def kill(self, ns: str, name: str) -> None:
        for found in self.engine.containers.list(
            all=True, filters={"name": f"k8sdouble-{ns}-{name}-"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                found.kill()

    def delete(self, ns: str, name: str) -> None:
        state = self.running.pop((ns, name), None)
        if state is not None:
            state["stopped"].set()
        for found in self.engine.containers.list(
            all=True, filters={"name": f"k8sdouble-{ns}-{name}-"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                found.remove(force=True)
        if state is not None:
            shutil.rmtree(state["root"], ignore_errors=True)

    def stop_all(self) -> None:
        for ns, name in list(self.running):
            self.delete(ns, name)


def security_options(spec: dict, container: dict) -> dict[str, Any]:
    """podman run options for the container's security context over the pod's (see the module
    docstring). Raises ValueError for what the kubelet would refuse to start."""
    pod = spec.get("securityContext") or {}
    own = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return own[key] if key in own else pod.get(key)

    options: dict[str, Any] = {}
    uid, gid = pick("runAsUser"), pick("runAsGroup")
    if pick("runAsNonRoot") and uid in (None, 0):
        # The kubelet would read the image's USER when runAsUser is unset; the double asks for it.
        raise ValueError(f"container {container['name']} has runAsNonRoot and runs as root")
    if uid is not None:
        options["user"] = f"{uid}:{gid}" if gid is not None else str(uid)
    capabilities = own.get("capabilities") or {}
    if capabilities.get("add"):
        options["cap_add"] = list(capabilities["add"])
    if capabilities.get("drop"):
        options["cap_drop"] = list(capabilities["drop"])
    if own.get("privileged"):
        options["privileged"] = True
    if own.get("readOnlyRootFilesystem"):
        options["read_only"] = True
    security_opt = []
    for key, opt in (("seccompProfile", "seccomp"), ("appArmorProfile", "apparmor")):
        kind = (pick(key) or {}).get("type", "RuntimeDefault")
        if kind == "Localhost":
            raise ValueError(f"{key} Localhost is not played by the double")
        if kind == "Unconfined":
            security_opt.append(f"{opt}=unconfined")
    if own.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    if security_opt:
        options["security_opt"] = security_opt
    return options
