"""End-to-end proof that the real local parts work through their public entry points.

Git smart HTTP with auth, the Docker-compatible API of podman (build, tag, push, pull, run), the
open and the authenticated registry, and stopping a running RUN step with runc.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.realparts import (
    GitServer,
    build_step_working_container,
    external_containers,
    kill_build_step_container,
    list_build_step_containers,
    run_git,
    sample_app_files,
    tar_context,
    unique_name,
)

pytestmark = pytest.mark.engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_get(
    url: str, user: str | None = None, password: str | None = None
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _errors(chunks: list[dict[str, Any]]) -> list[str]:
    return [str(c["error"]) for c in chunks if "error" in c]


def _build(
    client: docker.DockerClient, files: dict[str, str | bytes], tag: str
) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    chunks = list(
        client.api.build(
            fileobj=tar_context(files),
            custom_context=True,
            tag=tag,
            decode=True,
            rm=True,
            forcerm=True,
        )
    )
    return chunks, time.monotonic() - started


def _push(
    client: docker.DockerClient, repository: str, tag: str, auth: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"tag": tag, "stream": True, "decode": True}
    if auth is not None:
        kwargs["auth_config"] = auth
    return list(client.api.push(repository, **kwargs))


# ---------------------------------------------------------------------------------------------
# git


def test_git_server_password_is_not_on_its_command_line(git_server: GitServer) -> None:
    """`ps` shows every process's arguments to every user of the machine."""
    assert git_server.process is not None
    argv = Path(f"/proc/{git_server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--user" in argv
    assert not any(git_server.password.encode() in arg for arg in argv)


def test_git_clone_fetch_push_over_http_with_auth(git_server: GitServer, tmp_path: Path) -> None:
    name = unique_name("repo")
    files = sample_app_files(run_steps=2, extra={"bin/blob.bin": bytes(range(256)) * 4096})
    first = git_server.create_repo(name, files)
    assert git_server.head(name) == first

    clone = tmp_path / "clone"
    run_git("clone", "-q", git_server.auth_repo_url(name), str(clone))
    assert run_git("rev-parse", "HEAD", cwd=clone).strip() == first
    assert (clone / "Dockerfile").read_text() == files["Dockerfile"]
    assert (clone / "bin" / "blob.bin").read_bytes() == files["bin/blob.bin"]

    # A new branch and a new commit on main arrive by fetch.
    feature = git_server.commit(name, {"feature.txt": "feature\n"}, branch="feature")
    second = git_server.commit(name, {"index.html": None, "README.md": "hi\n"}, message="two")
    run_git("fetch", "-q", "origin", cwd=clone)
    assert run_git("rev-parse", "origin/feature", cwd=clone).strip() == feature
    assert run_git("rev-parse", "origin/main", cwd=clone).strip() == second
    assert run_git("rev-parse", f"{feature}^", cwd=clone).strip() == first
    tree = run_git("ls-tree", "--name-only", "origin/main", cwd=clone).split()
    assert "README.md" in tree and "index.html" not in tree

    # A client pushes a large-ish commit (chunked request body) over HTTP.
    (clone / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    run_git("checkout", "-q", "-B", "main", "origin/main", cwd=clone)
    run_git("add", "big.bin", cwd=clone)
    run_git("commit", "-q", "-m", "big", cwd=clone)
    run_git("push", "-q", "origin", "main", cwd=clone)
    assert git_server.head(name) == run_git("rev-parse", "HEAD", cwd=clone).strip()


def test_git_http_refuses_missing_or_wrong_credentials(
    git_server: GitServer, tmp_path: Path
) -> None:
    name = unique_name("private")
    git_server.create_repo(name, {"README.md": "secret\n"})
    refs = f"{git_server.repo_url(name)}/info/refs?service=git-upload-pack"

    status, headers, _ = _http_get(refs)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert _http_get(refs, git_server.user, "wrong-password")[0] == 401
    status, headers, body = _http_get(refs, git_server.user, git_server.password)
    assert status == 200
    assert headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert b"# service=git-upload-pack" in body

    with pytest.raises(RuntimeError, match=r"(?i)terminal prompts disabled|authentication"):
        run_git("clone", "-q", git_server.repo_url(name), str(tmp_path / "anon"))
    assert not (tmp_path / "anon" / "README.md").exists()


# ---------------------------------------------------------------------------------------------
# engine and registries


@pytest.fixture(scope="module")
def built_image(docker_client: docker.DockerClient) -> Iterator[dict[str, Any]]:
    """One sample app image, built once for the registry tests."""
    tag = f"localhost/{unique_name('sample')}:build"
    files = sample_app_files(run_steps=3)
    chunks, seconds = _build(docker_client, files, tag)
    assert not _errors(chunks), chunks
    image = docker_client.images.get(tag)
    yield {"tag": tag, "image": image, "files": files, "chunks": chunks, "seconds": seconds}
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.images.remove(image.id, force=True)


def test_build_streams_steps_and_run_output(built_image: dict[str, Any]) -> None:
    chunks = built_image["chunks"]
    text = "".join(str(c.get("stream", "")) for c in chunks)
    marker = built_image["files"]["index.html"].split("<p id=marker>")[1].split("<")[0]
    for i in (1, 2, 3):
        # The echoed line itself (not only the STEP header that contains the command).
        assert f"\nsample-app step {i} of 3 {marker}\n" in text, text
    assert "STEP 1/8: FROM localhost/busybox:latest" in text
    assert built_image["seconds"] < 60
    print(f"build {built_image['seconds']:.2f} s")
    config = built_image["image"].attrs["Config"]
    assert "httpd" in " ".join(config["Cmd"])
    assert "PORT=8080" in config["Env"]


def test_push_to_open_and_auth_registry_then_pull_and_run(
    docker_client: docker.DockerClient, real_services: dict[str, str], built_image: dict[str, Any]
) -> None:
    open_registry = real_services["ATMOSLY_TEST_REGISTRY"]
    auth_registry = real_services["ATMOSLY_TEST_AUTH_REGISTRY"]
    auth = {
        "username": real_services["ATMOSLY_TEST_AUTH_REGISTRY_USER"],
        "password": real_services["ATMOSLY_TEST_AUTH_REGISTRY_PASSWORD"],
    }
    name = unique_name("workflows/sample")
    image = built_image["image"]
    open_repo, auth_repo = f"{open_registry}/{name}", f"{auth_registry}/{name}"
    assert image.tag(open_repo, "v1") and image.tag(auth_repo, "v1")

    started = time.monotonic()
    chunks = _push(docker_client, open_repo, "v1")
    open_seconds = time.monotonic() - started
    assert not _errors(chunks), chunks
    started = time.monotonic()
    chunks = _push(docker_client, auth_repo, "v1", auth)
    auth_seconds = time.monotonic() - started
    assert not _errors(chunks), chunks
    print(f"push open {open_seconds:.2f} s, push auth {auth_seconds:.2f} s")

    # The registries themselves hold the tags (checked through their own HTTP API).
    status, _, body = _http_get(f"http://{open_registry}/v2/{name}/tags/list")
    assert status == 200 and json.loads(body)["tags"] == ["v1"]
    assert _http_get(f"http://{auth_registry}/v2/{name}/tags/list")[0] == 401
    status, _, body = _http_get(
        f"http://{auth_registry}/v2/{name}/tags/list", auth["username"], auth["password"]
    )
    assert status == 200 and json.loads(body)["tags"] == ["v1"]

    # Pull back from both into fresh references and check it is the same image.
    docker_client.images.remove(f"{open_repo}:v1")
    docker_client.images.remove(f"{auth_repo}:v1")
    pulled_open = docker_client.images.pull(open_repo, tag="v1")
    pulled_auth = docker_client.images.pull(auth_repo, tag="v1", auth_config=auth)
    assert pulled_open.id == pulled_auth.id == image.id
    assert pulled_open.attrs["Config"]["Cmd"] == image.attrs["Config"]["Cmd"]

    # The pulled image serves its index.html with busybox httpd on $PORT.
    port = _free_port()
    container = docker_client.containers.run(
        f"{open_repo}:v1", detach=True, environment={"PORT": str(port)}, network_mode="host"
    )
    try:
        deadline = time.monotonic() + 15
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    body = resp.read().decode()
                    break
            except OSError:
                time.sleep(0.1)
        assert "Workflows sample app" in body, container.logs().decode()
    finally:
        container.remove(force=True)
        for ref in (f"{open_repo}:v1", f"{auth_repo}:v1"):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(ref)


def test_push_to_auth_registry_without_credentials_fails(
    docker_client: docker.DockerClient, real_services: dict[str, str], built_image: dict[str, Any]
) -> None:
    auth_registry = real_services["ATMOSLY_TEST_AUTH_REGISTRY"]
    repo = f"{auth_registry}/{unique_name('denied')}"
    assert built_image["image"].tag(repo, "v1")
    try:
        for auth in (None, {"username": "ci", "password": "not-the-password"}):
            chunks = _push(docker_client, repo, "v1", auth)
            errors = _errors(chunks)
            assert errors, f"push with auth={auth} unexpectedly succeeded: {chunks}"
            assert any("authentication required" in e or "unauthorized" in e for e in errors), (
                errors
            )
    finally:
        docker_client.images.remove(f"{repo}:v1")


# ---------------------------------------------------------------------------------------------
# termination


def test_killing_the_run_step_container_ends_the_build(
    docker_client: docker.DockerClient,
) -> None:
    marker = unique_name("sleep-probe")
    files = {"Dockerfile": f'FROM localhost/busybox:latest\nRUN echo "{marker}" && sleep 60\n'}
    chunks: list[dict[str, Any]] = []
    failure: list[BaseException] = []
    ended = threading.Event()

    def consume() -> None:
        try:
            for chunk in docker_client.api.build(
                fileobj=tar_context(files),
                custom_context=True,
                decode=True,
                rm=True,
                forcerm=True,
                nocache=True,
            ):
                chunks.append(chunk)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            ended.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()

    step_ids: list[str] = []
    deadline = time.monotonic() + 30
    while not step_ids and time.monotonic() < deadline and not ended.is_set():
        step_ids = list_build_step_containers(match=marker)
        time.sleep(0.05)
    assert len(step_ids) == 1, f"no running RUN step found; chunks so far: {chunks}"
    # The build's working container (status "Storage" in podman ps --external) must go too.
    working = build_step_working_container(step_ids[0])
    assert working is not None, "could not map the RUN step to its working container"
    assert working in {c["Id"] for c in external_containers()}

    killed_at = time.monotonic()
    kill_build_step_container(step_ids[0])
    assert ended.wait(10), "build stream still open 10 s after the RUN step was killed"
    seconds = time.monotonic() - killed_at
    print(f"build stream ended {seconds:.3f} s after runc kill")
    thread.join(5)

    assert not failure, failure
    assert _errors(chunks), f"build ended without an error chunk: {chunks}"
    assert "sleep 60" in _errors(chunks)[-1]
    assert any(f"{marker}\n" == c.get("stream") for c in chunks), chunks
    assert seconds < 5

    assert list_build_step_containers(match=marker) == []
    assert step_ids[0] not in list_build_step_containers()
    # Cleanup may race the end of the stream by a moment; poll briefly.
    deadline = time.monotonic() + 10
    while working in {c["Id"] for c in external_containers()} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert working not in {c["Id"] for c in external_containers()}, subprocess.run(
        ["podman", "ps", "-a", "--external"], capture_output=True, text=True, check=False
    ).stdout
