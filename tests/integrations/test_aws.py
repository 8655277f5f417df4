"""AWS against moto's server (a real HTTP endpoint speaking the AWS APIs): CI variables read
from Secrets Manager at run start and masked in the log; an ECR connection logging in with the
token from `get_authorization_token` and pushing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from executions.status import ExecutionStatus as S
from tests.executions import log_text, make_git_workflow, run_now
from tests.realparts import sample_app_files
from workflows.models import CIVariable, RegistryConnection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SECRET_VALUE = "aws-held-secret-7d1e"


@pytest.fixture(scope="module")
def moto():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def aws_env(moto, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto,
    }.items():
        monkeypatch.setenv(key, value)
    return moto


def test_secret_manager_variable_reaches_the_build_masked(
    aws_env, engine, project, registry, git_server
):
    boto3.client("secretsmanager").create_secret(
        Name="demo/npm", SecretString=f'{{"token": "{SECRET_VALUE}"}}'
    )
    files = sample_app_files(run_steps=1)
    files["Dockerfile"] += (
        'RUN --mount=type=secret,id=NPM_TOKEN echo "token is $(cat /run/secrets/NPM_TOKEN)"\n'
    )
    workflow, _ = make_git_workflow(project, git_server, files, registry=registry)
    CIVariable.objects.create(
        workflow=workflow,
        key="NPM_TOKEN",
        is_secret=True,
        scope="build",
        secret_manager="aws",
        secret_ref="demo/npm#token",
    )
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    log = log_text(execution)
    assert "token is ***" in log
    assert SECRET_VALUE not in log


def test_missing_secret_fails_before_anything_runs(aws_env, engine, project, registry, git_server):
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    CIVariable.objects.create(
        workflow=workflow,
        key="NPM_TOKEN",
        is_secret=True,
        scope="build",
        secret_manager="aws",
        secret_ref="no/such/secret",
    )
    execution = run_now(workflow)
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        "AWS Secrets Manager: cannot read 'no/such/secret' (ResourceNotFoundException)"
    )
    assert not execution.stages.exclude(status="pending").exists()


def test_ecr_login_with_the_authorization_token(moto, engine, project, git_server):
    """moto's ECR hands out a real-shaped token; its proxyEndpoint is fake, so the connection's
    host override points the push at the local registry."""
    ecr = RegistryConnection.objects.create(
        project=project,
        name="ecr",
        provider="ecr",
        url=engine["ATMOSLY_TEST_REGISTRY"],
        aws_access_key_id="testing",
        password="testing",
        aws_region="eu-west-1",
        aws_endpoint_url=moto,
        insecure=True,
    )
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=ecr)
    execution = run_now(workflow)
    assert execution.status == S.SUCCEEDED, execution.status_reason
    assert execution.image.startswith(engine["ATMOSLY_TEST_REGISTRY"] + "/")
    assert execution.image_digest.startswith("sha256:")
    assert "testing" not in log_text(execution).replace("workflows-tests", "")


def test_a_too_short_secret_from_the_manager_fails_the_run(
    aws_env, engine, project, registry, git_server
):
    """Too short to mask reliably (issue 10): refused at run start, before anything runs."""
    boto3.client("secretsmanager").create_secret(Name="demo/short", SecretString="ab")
    workflow, _ = make_git_workflow(project, git_server, sample_app_files(), registry=registry)
    CIVariable.objects.create(
        workflow=workflow,
        key="SHORT_ONE",
        is_secret=True,
        scope="build",
        secret_manager="aws",
        secret_ref="demo/short",
    )
    execution = run_now(workflow)
    assert execution.status == S.FAILED
    assert execution.status_reason == (
        "secret variable SHORT_ONE: a secret value needs at least 8 characters to be masked "
        "reliably in logs and messages (this one has 2)"
    )
    assert not execution.stages.exclude(status="pending").exists()
