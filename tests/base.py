"""Named users and a project, like healthchecks' hc/test.py.

- alice: Admin role, member of "demo"
- bob: Developer, member
- carol: Viewer, member
- dave: Approver, member
- erin: Admin role, NOT a member of "demo" (sees nothing of it)
- frank: no role, member
"""

from __future__ import annotations

import time
from urllib.parse import quote

from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from rest_framework.test import APIClient

from workflows.models import Environment, Project, RegistryConnection, Service, Workflow
from workflows.roles import ensure_roles
from workflows.services import do_create_service, do_save_workflow

ROLE_OF = {
    "alice": "Admin",
    "bob": "Developer",
    "carol": "Viewer",
    "dave": "Approver",
    "erin": "Admin",
    "frank": None,
}


def wait_for(condition, timeout: float, what: str, poll: float = 0.05):
    """Calls `condition` every `poll` seconds until it returns something true, and returns
    that; AssertionError naming `what` after `timeout` seconds. For tests and benchmarks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_users() -> dict[str, User]:
    # Transactional tests empty the tables the roles migration filled.
    ensure_roles(Group, Permission)
    users = {}
    for name, role in ROLE_OF.items():
        user = User.objects.create_user(name, f"{name}@example.org", "password")
        if role:
            user.groups.add(Group.objects.get(name=role))
        users[name] = user
    return users


def make_project(users: dict[str, User], name: str = "demo") -> Project:
    project = Project.objects.create(name=name)
    project.members.add(*[u for n, u in users.items() if n != "erin"])
    return project


def make_environments(project: Project, names=("dev", "staging", "prod")) -> list[Environment]:
    return [
        Environment.objects.create(project=project, name=n, order=i, namespace=n)
        for i, n in enumerate(names)
    ]


def make_registry(project: Project, name: str = "local", url: str = "127.0.0.1:5000", **kw):
    return RegistryConnection.objects.create(
        project=project, name=name, provider="generic", url=url, insecure=True, **kw
    )


def make_service(
    project: Project,
    name: str = "web",
    repo_url: str = "https://git.example.org/demo/web.git",
    **kw,
) -> Service:
    return do_create_service(Service(project=project, name=name, repo_url=repo_url, **kw))


def app_cd_document(**overrides) -> dict:
    doc = {
        "name": "deliver",
        "pipeline_type": "app_cd",
        "source": {
            "kind": "git",
            "trigger": "automatic",
            "branches": [
                {"pattern": "main", "match": "exact"},
                {"pattern": "release/*", "match": "wildcard"},
            ],
            "tags": ["v*"],
        },
        "build": {"dockerfile": "Dockerfile", "context": ".", "platform": "linux/amd64"},
        "push": {
            "registry": "local",
            "repository": "demo/web",
            "tag_template": "{branch}-{short_sha}",
        },
        "deploy": {
            "port": 8080,
            "replicas": 1,
            "environments": [
                {"environment": "dev"},
                {"environment": "staging", "mode": "manual"},
                {
                    "environment": "prod",
                    "required_approvals": 1,
                    "approvers": {"users": ["dave"], "groups": []},
                },
            ],
        },
        "scripts": {
            "pre_build": "echo testing",
            "post_build": "",
            "post_push": "",
            "post_deploy": "",
        },
        "variables": [
            {"key": "API_URL", "value": "https://api.example.org", "scope": "runtime"},
            {"key": "NPM_TOKEN", "value": "s3cr3t-npm-token", "secret": True, "scope": "build"},
        ],
        "scanners": {"detect_secrets": True, "trivy": False, "sonarqube": False, "fail_on": "high"},
        "stage_timeout_minutes": 30,
        "layout": {"positions": {"source": {"x": 0, "y": 0}}},
    }
    doc.update(overrides)
    return doc


def save_document(service: Service, doc: dict, workflow: Workflow | None = None) -> Workflow:
    from workflows.document import WorkflowDocumentSerializer

    serializer = WorkflowDocumentSerializer(data=doc, service=service, workflow=workflow)
    serializer.is_valid(raise_exception=True)
    return do_save_workflow(service, serializer.validated_data, workflow)


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def database_url() -> str:
    """DATABASE_URL of the test database this session uses, for subprocesses (workers, daphne,
    manage.py) that must see what the test writes: the SQLite file or the PostgreSQL database."""
    conf = connection.settings_dict
    name = str(conf["NAME"])
    if connection.vendor == "sqlite":
        assert name and not name.startswith(("file:", ":memory:")), name
        return f"sqlite:///{name}"
    assert connection.vendor == "postgresql", connection.vendor
    user = quote(conf["USER"] or "", safe="")
    password = quote(conf["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{conf['HOST']}:{conf['PORT']}/{name}"


def queued_tasks() -> list[dict]:
    """The tasks waiting in django-q2's broker, decoded: the ORM broker's table, or Redis's list
    in the scale mode (REDIS_URL)."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    broker = get_broker()
    if hasattr(broker.connection, "lrange"):
        return [
            SignedPackage.loads(raw) for raw in broker.connection.lrange(broker.list_key, 0, -1)
        ]
    return [task.task for task in OrmQ.objects.filter(key=broker.list_key)]


def remove_local_pods(docker_host: str) -> list[str]:
    """Stops and removes the pods that this test's runs played on the local engine at
    `docker_host`: those labelled with a run of this database and its project (names such as
    "demo-web-release-prod" are alike across test sessions; the pair is not). A release that
    crashes would otherwise restart on the shared engine after the test. Returns their names."""
    from django.test import override_settings

    from executions.models import Execution
    from integrations.errors import ProviderError
    from integrations.kubernetes.manifests import EXECUTION_LABEL, LABEL_PREFIX
    from integrations.local_engine.podman import Podman

    runs = dict(Execution.objects.values_list("pk", "workflow__service__project__name"))
    if not runs:
        return []
    try:
        with override_settings(DOCKER_HOST=docker_host):
            podman = Podman()
    except ProviderError:  # no engine there: nothing can have been played on it
        return []
    removed = []
    for pod in podman.pods(EXECUTION_LABEL):
        labels = pod.get("Labels") or {}
        run = labels.get(EXECUTION_LABEL, "")
        if run.isdigit() and runs.get(int(run)) == labels.get(f"{LABEL_PREFIX}/project"):
            podman.stop_pod(pod["Id"], 1)
            podman.remove_pod(pod["Id"])
            removed.append(pod["Name"])
    return removed
