from __future__ import annotations

import json

import pytest

from tests import base
from tests.k8s_double import KubernetesDouble
from tests.realparts import BASE_IMAGE, sample_app_files, tar_context, unique_name
from workflows.models import Environment


@pytest.fixture
def project(users):
    """A project of its own per test: the local engine's pods and secrets carry its name."""
    return base.make_project(users, name=unique_name("deploy"))


@pytest.fixture
def service(project):
    return base.make_service(project, name=unique_name("web"))


@pytest.fixture
def double():
    with KubernetesDouble(namespaces=("dev", "staging"), forbidden=("prod",)) as running:
        yield running


@pytest.fixture
def k8s_envs(project, double) -> dict[str, Environment]:
    """dev and staging on the double's cluster; prod in a namespace the deployer may not use."""
    return {
        name: Environment.objects.create(
            project=project,
            name=name,
            order=order,
            namespace=name,
            target="kubernetes",
            kubeconfig=double.kubeconfig(namespace=name),
        )
        for order, name in enumerate(("dev", "staging", "prod"))
    }


@pytest.fixture
def local(engine, settings, docker_client, project):
    """The local engine; afterwards every pod and secret of the test's project is removed."""
    settings.DEPLOY_LOCAL_READY_SECONDS = 20
    yield engine
    api = docker_client.api
    label = json.dumps({"label": [f"workflows.atmosly.io/project={project.name}"]})
    for pod in api.get(api._url("/libpod/pods/json"), params={"filters": label}).json() or []:
        api.post(api._url(f"/libpod/pods/{pod['Id']}/stop"), params={"t": 1})
        api.delete(api._url(f"/libpod/pods/{pod['Id']}"), params={"force": "true"})
    for secret in api.get(api._url("/libpod/secrets/json")).json() or []:
        if secret["Spec"]["Name"].startswith(project.name):
            api.delete(api._url(f"/libpod/secrets/{secret['ID']}"))


@pytest.fixture
def local_envs(project) -> dict[str, Environment]:
    return {e.name: e for e in base.make_environments(project, names=("dev", "staging"))}


IMAGES = {
    # name: Dockerfile lines after FROM
    "worker": ['CMD ["sh", "-c", "while true; do echo working on $QUEUE; sleep 1; done"]'],
    "cron": ['CMD ["sh", "-c", "echo cron job ran for $QUEUE with token $TOKEN"]'],
    "crash": ['CMD ["sh", "-c", "echo the app cannot start; exit 3"]'],
    "leak": ['CMD ["sh", "-c", "echo cannot connect with password $DB_PASSWORD; exit 3"]'],
    "silent": ['CMD ["sh", "-c", "exec sleep 3600"]'],
    "deaf": ['CMD ["sh", "-c", "echo listening on 9 instead of $PORT; exec httpd -f -p 9 -h /"]'],
}


class Images:
    """Images built once per session and pushed to the open registry: ref and digest."""

    def __init__(self, docker_client, registry: str):
        self.client, self.registry, self.built = docker_client, registry, {}

    def app(self, marker: str, delay: int = 0) -> tuple[str, str]:
        files = sample_app_files(run_steps=0, marker=marker)
        if delay:
            files["Dockerfile"] = files["Dockerfile"].replace(
                'CMD ["sh", "-c", "exec', f'CMD ["sh", "-c", "sleep {delay}; exec'
            )
        return self.build(f"app-{marker}-{delay}", files)

    def other(self, name: str) -> tuple[str, str]:
        dockerfile = "\n".join([f"FROM {BASE_IMAGE}", *IMAGES[name]]) + "\n"
        return self.build(name, {"Dockerfile": dockerfile})

    def arm64(self) -> tuple[str, str]:
        """An image built for linux/arm64 only (QEMU runs its RUN step)."""
        dockerfile = "FROM localhost/busybox:arm64\nRUN uname -m > /arch\n"
        return self.build("arm64-only", {"Dockerfile": dockerfile}, platform="linux/arm64")

    def build(self, key: str, files: dict, platform: str | None = None) -> tuple[str, str]:
        from tests.deploy import digest_of

        if key not in self.built:
            ref = f"{self.registry}/workflows-tests/deploy-{key}:1"
            stream = self.client.api.build(
                fileobj=tar_context(files),
                custom_context=True,
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
                platform=platform,
                pull=False,
            )
            for chunk in stream:
                assert "error" not in chunk, chunk
            self.built[key] = (ref, digest_of(self.client, ref))
        return self.built[key]


@pytest.fixture(scope="session")
def images(real_services, docker_client) -> Images:
    return Images(docker_client, real_services["ATMOSLY_TEST_REGISTRY"])
