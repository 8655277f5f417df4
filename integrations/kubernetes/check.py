"""Test connection of a Kubernetes environment: can Workflows deploy there with these
credentials? Run as a probe (atmosly.probes), off the request thread.

Two calls through the official client:
1. `GET /version` (VersionApi.get_code): the cluster answers and the credentials authenticate;
2. one `SelfSubjectAccessReview` (POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews)
   per verb the deploy needs on Deployments in the namespace. The deploy applies server-side
   (PATCH application/apply-patch+yaml), and an apply that creates the object is also checked
   for `create` (Kubernetes docs, "Server-Side Apply", permissions), so both are asked.
The review is what `kubectl auth can-i patch deployments.apps -n <namespace>` asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from integrations.kubernetes.target import CONFIG_ERRORS, api_message, new_api_client

DEPLOY_VERBS = ("create", "patch")
CHECK_TIMEOUT = (5, 15)  # connect, read (seconds)


class ClusterCheckError(Exception):
    """The cluster cannot be used as configured; the message says why, in the API's words."""


def check_cluster(kubeconfig: str, namespace: str, in_cluster: bool = False) -> dict[str, Any]:
    """Reads the server version, then asks whether these credentials may create and patch
    Deployments (group apps) in `namespace`.

    Returns the probe shape `{"summary": str, "items": [str]}`; raises ClusterCheckError with
    the kubeconfig's problem, the unreachable address, the API's own message (401, 403 ...) or
    the verbs refused (with the authorizer's reason when it gives one)."""
    try:
        api = new_api_client(kubeconfig, in_cluster)
    except CONFIG_ERRORS as exc:
        how = "in-cluster credentials" if in_cluster else "kubeconfig"
        raise ClusterCheckError(f"the {how} cannot be used: {exc}") from exc
    address = api.configuration.host
    with api:
        version = call(address, "read the server version", client.VersionApi(api).get_code)
        server = f"Kubernetes {version.git_version} at {address}"
        refused = []
        for verb in DEPLOY_VERBS:
            review = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        namespace=namespace, verb=verb, group="apps", resource="deployments"
                    )
                )
            )
            answer = call(
                address,
                "review access",
                client.AuthorizationV1Api(api).create_self_subject_access_review,
                review,
            )
            status = answer.status
            if not (status and status.allowed):
                reason = (status and (status.reason or status.evaluation_error)) or ""
                refused.append(f"{verb}{f' ({reason})' if reason else ''}")
    if refused:
        raise ClusterCheckError(
            f"{server} answered, but these credentials may not "
            f'{", ".join(refused)} deployments.apps in namespace "{namespace}"'
        )
    return {
        "summary": f"{server}: may apply Deployments in namespace {namespace}",
        "items": [f"{verb} deployments.apps: allowed" for verb in DEPLOY_VERBS],
    }


def call(address: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args, _request_timeout=CHECK_TIMEOUT)
    except ApiException as exc:
        raise ClusterCheckError(
            f"the Kubernetes API at {address} refused to {what}: {api_message(exc)}"
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterCheckError(f"cannot reach the Kubernetes API at {address}: {reason}") from exc
