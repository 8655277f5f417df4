"""A double of the Kubernetes API for tests: NOT Kubernetes, a small HTTP server that speaks the
part of its REST API the deploy target uses. No Kubernetes API server can be installed on this
machine kind (none in apt, PyPI or npm), so the Kubernetes code path is tested against this.

What it does, as the API does:
- bearer-token auth (401 otherwise); namespaces, with "forbidden" ones answering 403 and unknown
  ones 404, each with a `Status` body like the API's;
- server-side apply: PATCH `application/apply-patch+yaml` with a required `fieldManager`,
  creating or updating, `force` needed to take fields another manager applied (409 otherwise),
  `metadata.generation` bumped on a spec change, managedFields recorded;
- every object it receives is validated with kubernetes-validate (the API's OpenAPI schemas,
  strict: unknown fields refused) plus names and label values, answering 422 `Invalid`;
- GET /api/v1/nodes: the nodes it is given (name → architecture, in status.nodeInfo and the
  kubernetes.io/arch label), or 403 when told the deployer may not list nodes;
- POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews (201): allowed unless the review
  is about a forbidden namespace (or about nodes when nodes are forbidden), denied with no
  reason as RBAC does, the namespace's existence not checked (as RBAC);
- GET, list with equality label selectors, DELETE, and GET/PATCH of the status subresource for
  Deployments, Services, Secrets, CronJobs, and read-only Pods;
- given an engine (`docker_host`), applied Pods are played on podman by kubelet.py (NOT a
  kubelet: same image, command, env, mounts and security context, on the host's network), their
  log served at .../pods/<name>/log; the Kubernetes builder's pod runs real git and Buildah so;
- a fake controller: after `rollout_delay` it "rolls out" a Deployment's new generation, making
  pods and setting observedGeneration, updated/ready/available replicas and the Progressing
  and Available conditions; pods of images it is told it cannot pull wait in ImagePullBackOff,
  of images told to crash in CrashLoopBackOff, the old pods keep serving, and the Progressing
  condition turns ProgressDeadlineExceeded after the Deployment's progressDeadlineSeconds.

What it does not: real field-level SSA merging (the applying manager owns the whole object it
applied), ReplicaSets and Jobs as objects, scheduling, resource versions for watches, watches,
admission, RBAC beyond "this namespace is forbidden", anything of CronJobs beyond storing them.
"""

from tests.k8s_double.server import KubernetesDouble

__all__ = ["KubernetesDouble"]
