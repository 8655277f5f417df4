"""The Kubernetes API double's HTTP server, its object store and its fake controller."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import yaml

SCHEMA_VERSION = "1.37.0"
DEPLOYER = "system:serviceaccount:workflows:deployer"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# plural → (group, version, kind); the group "" is the core API at /api/v1.
RESOURCES = {
    "secrets": ("", "v1", "Secret"),
    "services": ("", "v1", "Service"),
    "pods": ("", "v1", "Pod"),
    "deployments": ("apps", "v1", "Deployment"),
    "cronjobs": ("batch", "v1", "CronJob"),
}
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
LOG_RE = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")
PATH_RE = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z.]+)/(?P<version>v1))/namespaces/(?P<ns>[^/]+)"
    r"(?:/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?)?$"
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class KubernetesDouble:
    """See the package docstring. Start with `with KubernetesDouble(...) as double:`."""

    def __init__(
        self,
        *,
        namespaces: tuple[str, ...] = ("default",),
        forbidden: tuple[str, ...] = (),
        token: str = "double-token",
        rollout_delay: float = 0.2,
        unpullable: tuple[str, ...] = ("missing",),
        crashing: tuple[str, ...] = ("crash",),
        nodes: dict[str, str] | None = None,
        nodes_forbidden: bool = False,
        docker_host: str | None = None,
    ):
        self.namespaces = set(namespaces) | set(forbidden)
        self.forbidden = set(forbidden)
        self.token = token
        self.rollout_delay = rollout_delay
        self.unpullable = unpullable
        self.crashing = crashing
        # node name → CPU architecture, answered at GET /api/v1/nodes; tests change it freely.
        self.nodes = {"node-1": "amd64"} if nodes is None else dict(nodes)
        self.nodes_forbidden = nodes_forbidden
        # With an engine, applied pods are played on it (tests/k8s_double/kubelet.py).
        self.kubelet = None
        if docker_host:
            from tests.k8s_double.kubelet import Kubelet

            self.kubelet = Kubelet(self, docker_host)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.changed_at: dict[tuple[str, str, str], float] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> KubernetesDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        double = self

        class Handler(RequestHandler):
            pass

        Handler.double = double
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self.control_loop, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        if self.kubelet is not None:
            self.kubelet.stop_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, namespace: str = "default", token: str | None = None) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": self.url}}],
                "users": [{"name": "deployer", "user": {"token": token or self.token}}],
                "contexts": [
                    {
                        "name": "double",
                        "context": {
                            "cluster": "double",
                            "user": "deployer",
                            "namespace": namespace,
                        },
                    }
                ],
                "current-context": "double",
            }
        )

    # --- reading the state in tests -----------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        plural = next(p for p, r in RESOURCES.items() if r[2] == kind)
        with self.lock:
            found = self.objects.get((plural, namespace, name))
            return copy.deepcopy(found) if found else None

    def applies(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "PATCH"]

    # --- the API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, Any]:
        self.requests.append(
            {
                "method": method,
                "path": path,
                "query": query,
                "content_type": headers.get("Content-Type", ""),
            }
        )
        if headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if path in ("/version", "/version/"):  # the API serves both; the client asks the second
            return 200, {
                "major": "1",
                "minor": "37",
                "gitVersion": "v1.37.0-double",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api/v1/nodes" and method == "GET":
            return 200, self.list_nodes()
        if path == SSAR_PATH and method == "POST":
            return 201, self.access_review(body)
        ns_match = re.match(r"^/api/v1/namespaces/([^/]+)$", path)
        if ns_match and method == "GET":
            return 200, self.read_namespace(ns_match.group(1))
        match = PATH_RE.match(path)
        if not match or match.group("plural") not in RESOURCES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        plural, ns, name, sub = (match.group(k) for k in ("plural", "ns", "name", "sub"))
        group, version, kind = RESOURCES[plural]
        if (match.group("group") or "") != group:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = {"GET": "get" if name else "list", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb is None or (plural == "pods" and verb == "patch" and self.kubelet is None):
            raise ApiError(
                405, "MethodNotAllowed", f"the server does not allow this method on {plural}"
            )
        if ns in self.forbidden:
            what = f"{plural}{'.' + group if group else ''}"
            who = f'"{name}" ' if name else ""
            raise ApiError(
                403,
                "Forbidden",
                f'{what} {who}is forbidden: User "{DEPLOYER}" cannot {verb} resource "{plural}"'
                f' in API group "{group}" in the namespace "{ns}"',
                {"name": name or "", "group": group, "kind": plural},
            )
        if ns not in self.namespaces:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )
        key = (plural, ns, name or "")
        with self.lock:
            if verb == "list":
                return 200, self.list(plural, ns, query.get("labelSelector", [""])[0])
            if verb == "get":
                return 200, copy.deepcopy(self.existing(key, kind))
            if verb == "delete":
                self.existing(key, kind)
                self.delete(key)
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
            if sub == "status":
                return 200, self.patch_status(key, kind, headers, body)
            return self.apply(key, group, version, kind, query, headers, body)

    def access_review(self, body: bytes) -> dict[str, Any]:
        """A SelfSubjectAccessReview, answered by the same rule the double enforces: the
        deployer may do anything in a namespace except the forbidden ones, and list nodes
        unless `nodes_forbidden`. Like RBAC, it denies with no reason and does not check that
        the namespace exists."""
        try:
            review = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not JSON") from None
        # The API takes the kind from the path when the body leaves it out.
        if not isinstance(review, dict) or review.get("kind", "SelfSubjectAccessReview") != (
            "SelfSubjectAccessReview"
        ):
            raise ApiError(400, "BadRequest", "the object is not a SelfSubjectAccessReview")
        spec = review.get("spec") or {}
        attributes = spec.get("resourceAttributes")
        if bool(attributes) == bool(spec.get("nonResourceAttributes")):
            raise ApiError(
                422,
                "Invalid",
                "SelfSubjectAccessReview.authorization.k8s.io is invalid: spec.resourceAttributes:"
                " Invalid value: exactly one of nonResourceAttributes or resourceAttributes"
                " must be specified",
            )
        allowed = True
        if attributes:
            namespace = attributes.get("namespace") or ""
            if namespace:
                allowed = namespace not in self.forbidden
            elif attributes.get("resource") == "nodes":
                allowed = not self.nodes_forbidden
        answer = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1"}
        return {**answer, **review, "metadata": {}, "status": {"allowed": allowed}}

    def list_nodes(self) -> dict[str, Any]:
        if self.nodes_forbidden:
            raise ApiError(
                403,
                "Forbidden",
                f'nodes is forbidden: User "{DEPLOYER}" cannot list resource "nodes" in API group'
                ' "" at the cluster scope',
                {"kind": "nodes"},
            )
        items = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"kubernetes.io/arch": arch, "kubernetes.io/os": "linux"},
                },
                "status": {
                    "nodeInfo": {
                        "architecture": arch,
                        "operatingSystem": "linux",
                        "bootID": name,
                        "machineID": name,
                        "systemUUID": name,
                        "containerRuntimeVersion": "containerd://2.0.0",
                        "kernelVersion": "6.1.0",
                        "kubeProxyVersion": "v1.37.0-double",
                        "kubeletVersion": "v1.37.0-double",
                        "osImage": "double",
                    }
                },
            }
            for name, arch in sorted(self.nodes.items())
        ]
        return {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}

    def read_namespace(self, ns: str) -> dict[str, Any]:
        if ns in self.forbidden:
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{ns}" is forbidden: User "{DEPLOYER}" cannot get resource "namespaces" in API group "" in the namespace "{ns}"',
            )
        if ns not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns},
            "status": {"phase": "Active"},
        }

    def existing(self, key: tuple[str, str, str], kind: str) -> dict[str, Any]:
        found = self.objects.get(key)
        if found is None:
            plural = key[0]
            group = RESOURCES[plural][0]
            what = f"{plural}.{group}" if group else plural
            raise ApiError(
                404, "NotFound", f'{what} "{key[2]}" not found', {"name": key[2], "kind": plural}
            )
        return found

    def list(self, plural: str, ns: str, selector: str) -> dict[str, Any]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        items = [
            copy.deepcopy(obj)
            for (p, n, _), obj in sorted(self.objects.items())
            if p == plural
            and n == ns
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        group, version, kind = RESOURCES[plural]
        api_version = f"{group}/{version}" if group else version
        return {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {}, "items": items}

    def delete(self, key: tuple[str, str, str]) -> None:
        self.objects.pop(key, None)
        if key[0] == "pods" and self.kubelet is not None:
            self.kubelet.delete(key[1], key[2])
        if key[0] == "deployments":
            for pod_key in [k for k in self.objects if k[0] == "pods" and k[1] == key[1]]:
                owner = self.objects[pod_key]["metadata"].get("annotations", {}).get("double/owner")
                if owner == key[2]:
                    del self.objects[pod_key]

    def patch_status(self, key, kind: str, headers, body: bytes) -> dict[str, Any]:
        if headers.get("Content-Type") != "application/merge-patch+json":
            raise ApiError(
                415, "UnsupportedMediaType", "the status subresource takes merge patches here"
            )
        obj = self.existing(key, kind)
        obj.setdefault("status", {}).update(json.loads(body or b"{}").get("status", {}))
        return copy.deepcopy(obj)

    def apply(self, key, group, version, kind, query, headers, body: bytes) -> tuple[int, dict]:
        content_type = headers.get("Content-Type", "")
        if content_type != "application/apply-patch+yaml":
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the double only takes server-side apply, not {content_type!r}",
            )
        manager = query.get("fieldManager", [""])[0]
        if not manager:
            raise ApiError(
                400,
                "BadRequest",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        force = query.get("force", ["false"])[0].lower() == "true"
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"error decoding YAML: {exc}") from exc
        api_version = f"{group}/{version}" if group else version
        if (
            not isinstance(obj, dict)
            or obj.get("apiVersion") != api_version
            or obj.get("kind") != kind
        ):
            raise ApiError(400, "BadRequest", f"the body is not a {api_version} {kind}")
        name = (obj.get("metadata") or {}).get("name")
        if name != key[2]:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({name}) does not match the name on the URL ({key[2]})",
            )
        if obj["metadata"].get("namespace", key[1]) != key[1]:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the object does not match the namespace on the request",
            )
        self.validate(obj, group, kind, name)
        current = self.objects.get(key)
        if current is None:
            created = self.create(obj, kind, manager, api_version)
            self.objects[key] = created
            self.changed_at[key] = time.monotonic()
            if kind == "Pod" and self.kubelet is not None:
                created["status"] = {"phase": "Pending"}
                self.kubelet.start(key[1], created)
            return 201, copy.deepcopy(created)
        others = [
            f
            for f in current["metadata"].get("managedFields", [])
            if f["operation"] == "Apply" and f["manager"] != manager
        ]
        if others and not force:
            raise ApiError(
                409,
                "Conflict",
                f'Apply failed with 1 conflict: conflict with "{others[0]["manager"]}": .spec',
            )
        self.update(key, current, obj, manager, api_version)
        return 200, copy.deepcopy(current)

    def validate(self, obj: dict, group: str, kind: str, name: str) -> None:
        what = f'{kind}{"." + group if group else ""} "{name}"'
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise ApiError(422, "Invalid", f"{what} is invalid: {path}: {exc.message}") from exc
        if not NAME_RE.match(name) or len(name) > 63:
            raise ApiError(
                422,
                "Invalid",
                f"{what} is invalid: metadata.name: Invalid value: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
            )
        for where, labels in self.label_sets(obj):
            for label, value in (labels or {}).items():
                prefix, _, short = label.rpartition("/")
                if not LABEL_NAME_RE.match(short) or len(short) > 63 or len(prefix) > 253:
                    raise ApiError(
                        422,
                        "Invalid",
                        f"{what} is invalid: {where}: Invalid value: {label!r}: name part must be a valid label name",
                    )
                if not LABEL_VALUE_RE.match(str(value)) or len(str(value)) > 63:
                    raise ApiError(
                        422,
                        "Invalid",
                        f"{what} is invalid: {where}: Invalid value: {value!r}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', at most 63 characters",
                    )

    @staticmethod
    def label_sets(obj: dict):
        yield "metadata.labels", obj["metadata"].get("labels")
        spec = obj.get("spec") or {}
        if "template" in spec:
            yield (
                "spec.template.metadata.labels",
                (spec["template"].get("metadata") or {}).get("labels"),
            )
            selector = (spec.get("selector") or {}).get("matchLabels")
            yield "spec.selector.matchLabels", selector
            template_labels = (spec["template"].get("metadata") or {}).get("labels") or {}
            if selector and any(template_labels.get(k) != v for k, v in selector.items()):
                raise ApiError(
                    422,
                    "Invalid",
                    "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
                )
        if "jobTemplate" in spec:
            yield (
                "spec.jobTemplate.metadata.labels",
                (spec["jobTemplate"].get("metadata") or {}).get("labels"),
            )

    def create(self, obj: dict, kind: str, manager: str, api_version: str) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(time.monotonic_ns()),
            creationTimestamp=now(),
            managedFields=[self.managed(manager, api_version)],
        )
        if kind in ("Deployment", "CronJob"):
            meta["generation"] = 1
        if kind == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(v.encode()).decode()
        if kind == "Deployment":
            spec = obj["spec"]
            spec.setdefault("replicas", 1)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
            obj["status"] = {}
        if kind == "Service":
            obj["spec"].setdefault(
                "clusterIP", f"10.96.{len(self.objects) % 250}.{uuid.uuid4().int % 250 + 1}"
            )
        return obj

    def update(self, key, current: dict, applied: dict, manager: str, api_version: str) -> None:
        before = json.dumps(current.get("spec"), sort_keys=True)
        meta = current["metadata"]
        for field in ("labels", "annotations"):
            if field in applied["metadata"]:
                meta[field] = applied["metadata"][field]
            else:
                meta.pop(field, None)
        for field in ("spec", "data", "type"):
            if field in applied:
                if field == "spec":
                    kept = {k: v for k, v in current["spec"].items() if k == "clusterIP"}
                    current["spec"] = {**copy.deepcopy(applied["spec"]), **kept}
                    if current["kind"] == "Deployment":
                        current["spec"].setdefault("replicas", 1)
                        current["spec"].setdefault("progressDeadlineSeconds", 600)
                else:
                    current[field] = copy.deepcopy(applied[field])
        meta["managedFields"] = [
            f for f in meta.get("managedFields", []) if f["manager"] != manager
        ] + [self.managed(manager, api_version)]
        meta["resourceVersion"] = str(time.monotonic_ns())
        if "generation" in meta and json.dumps(current.get("spec"), sort_keys=True) != before:
            meta["generation"] += 1
            self.changed_at[key] = time.monotonic()

    @staticmethod
    def managed(manager: str, api_version: str) -> dict:
        return {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": api_version,
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }

    # --- the fake controller ------------------------------------------------------------------

    def control_loop(self) -> None:
        while not self.stopping.wait(0.05):
            with self.lock:
                for key, obj in list(self.objects.items()):
                    if key[0] == "deployments":
                        self.reconcile(key, obj)

    def image_problem(self, image: str) -> str:
        if any(word in image for word in self.unpullable):
            return "ImagePullBackOff"
        if any(word in image for word in self.crashing):
            return "CrashLoopBackOff"
        return ""

    def reconcile(self, key, deployment: dict) -> None:
        meta, spec, status = deployment["metadata"], deployment["spec"], deployment["status"]
        if time.monotonic() - self.changed_at.get(key, 0) < self.rollout_delay:
            return
        template = spec["template"]
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[
            :10
        ]
        want = spec.get("replicas", 1)
        pods = {
            k: p
            for k, p in self.objects.items()
            if k[0] == "pods"
            and k[1] == key[1]
            and p["metadata"]["annotations"]["double/owner"] == key[2]
        }
        new = {
            k: p
            for k, p in pods.items()
            if p["metadata"]["labels"].get("pod-template-hash") == template_hash
        }
        problems = [self.image_problem(c["image"]) for c in template["spec"]["containers"]]
        problem = next((p for p in problems if p), "")
        if len(new) < want:
            for index in range(len(new), want):
                pod = self.make_pod(key, template, template_hash, index, problem)
                self.objects[("pods", key[1], pod["metadata"]["name"])] = pod
                new[("pods", key[1], pod["metadata"]["name"])] = pod
        old = {k: p for k, p in pods.items() if k not in new}
        if not problem:
            for k in old:
                del self.objects[k]
            old = {}
        ready_old = sum(
            1 for p in old.values() if p["status"]["phase"] == "Running" and p["double_ready"]
        )
        available = (0 if problem else want) + ready_old
        first_seen = status.get("double_progress_since", time.time()) if problem else time.time()
        progressing = {
            "type": "Progressing",
            "status": "True",
            "reason": "ReplicaSetUpdated" if problem else "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{key[2]}-{template_hash}" '
            + ("is progressing." if problem else "has successfully progressed."),
            "lastUpdateTime": now(),
            "lastTransitionTime": now(),
        }
        if problem and time.time() - first_seen > spec.get("progressDeadlineSeconds", 600):
            progressing.update(
                status="False",
                reason="ProgressDeadlineExceeded",
                message=f'ReplicaSet "{key[2]}-{template_hash}" has timed out progressing.',
            )
        deployment["status"] = {
            "observedGeneration": meta["generation"],
            "replicas": want + len(old),
            "updatedReplicas": want,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, want - (0 if problem else want)),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available >= want else "False",
                    "reason": "MinimumReplicasAvailable"
                    if available >= want
                    else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available >= want
                    else "Deployment does not have minimum availability.",
                    "lastUpdateTime": now(),
                    "lastTransitionTime": now(),
                },
                progressing,
            ],
        }
        if problem:
            deployment["status"]["double_progress_since"] = first_seen

    def make_pod(self, key, template: dict, template_hash: str, index: int, problem: str) -> dict:
        name = f"{key[2]}-{template_hash}-{index}{uuid.uuid4().hex[:4]}"
        statuses = []
        for c in template["spec"]["containers"]:
            status: dict[str, Any] = {
                "name": c["name"],
                "image": c["image"],
                "imageID": "" if problem == "ImagePullBackOff" else f"{c['image']}",
                "ready": not problem,
                "started": not problem,
                "restartCount": 3 if problem == "CrashLoopBackOff" else 0,
            }
            if problem == "ImagePullBackOff":
                status["state"] = {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{c["image"]}"',
                    }
                }
            elif problem == "CrashLoopBackOff":
                status["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 40s restarting failed container={c['name']} pod={name}",
                    }
                }
                status["lastState"] = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": now(),
                        "finishedAt": now(),
                    }
                }
            else:
                status["state"] = {"running": {"startedAt": now()}}
            statuses.append(status)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": key[1],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
                "labels": {
                    **(template.get("metadata") or {}).get("labels", {}),
                    "pod-template-hash": template_hash,
                },
                "annotations": {"double/owner": key[2]},
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {
                "phase": "Pending" if problem == "ImagePullBackOff" else "Running",
                "containerStatuses": statuses,
            },
            "double_ready": not problem,
        }


class RequestHandler(BaseHTTPRequestHandler):
    double: KubernetesDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
        pass

    def respond(self, method: str) -> None:
        parts = urlsplit(self.path)
        log = LOG_RE.match(parts.path)
        if log and method == "GET" and self.double.kubelet is not None:
            self.stream_log(*log.groups(), parse_qs(parts.query))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            code, payload = self.double.handle(
                method, parts.path, parse_qs(parts.query), self.headers, body
            )
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        payload = strip_internal(payload)
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream_log(self, ns: str, name: str, query: dict) -> None:
        """GET .../pods/<name>/log?container=&follow=: podman's log, chunked as it comes."""
        double = self.double
        status = None
        if self.headers.get("Authorization") != f"Bearer {double.token}":
            status = ApiError(401, "Unauthorized", "Unauthorized")
        elif double.get("Pod", ns, name) is None:
            status = ApiError(404, "NotFound", f'pods "{name}" not found')
        container = query.get("container", [""])[0]
        follow = query.get("follow", ["false"])[0] == "true"
        try:
            chunks = None if status else double.kubelet.logs(ns, name, container, follow)
        except Exception:
            status = ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start',
            )
        if status is not None:
            data = json.dumps(status.status()).encode()
            self.send_response(status.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with contextlib.suppress(Exception):  # the container went away with its pod
            for chunk in chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        self.respond("GET")

    def do_PATCH(self) -> None:
        self.respond("PATCH")

    def do_DELETE(self) -> None:
        self.respond("DELETE")

    def do_POST(self) -> None:
        self.respond("POST")

    def do_PUT(self) -> None:
        self.respond("PUT")


def strip_internal(payload: Any) -> Any:
    """Drops the double's own bookkeeping keys (prefixed `double_`) from what it answers."""
    if isinstance(payload, dict):
        return {k: strip_internal(v) for k, v in payload.items() if not k.startswith("double_")}
    if isinstance(payload, list):
        return [strip_internal(v) for v in payload]
    return payload
