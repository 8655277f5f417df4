"""The Kubernetes builder's BuildKit script (integrations/kubernetes/builder.py), run as its pod
would run it: `sh -c` in a container on the real engine, with the build container's env taken
from the pod spec (Secret references resolved from the Secret, as a kubelet does) and the
Secret's files mounted where the pod mounts them.

BuildKit itself does not run here (no BuildKit binary in Debian 12, on PyPI or npm, and no
registry to pull moby/buildkit from), so `buildctl-daemonless.sh` is a RECORDING STAND-IN: it
prints each argument it was given and writes a metadata file in buildctl's format. What is
tested is the command line the pod hands BuildKit (platforms, destinations, TLS, cache import
and export, cache off, build args) and the digest the stage reads back; the Buildah path runs
for real in test_kubernetes_builder.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.kubernetes.builder import BUILDKIT, DIGEST_MARKER, BuildPod
from tests.executions import pod_for

pytestmark = pytest.mark.engine

BUSYBOX = "localhost/busybox:latest"
DIGEST = "sha256:" + "d1" * 32
# buildctl --metadata-file writes indented JSON; the descriptor holds a digest of its own.
RECORDING_BUILDCTL = f"""#!/bin/sh
for arg in "$@"; do printf 'ARG %s\\n' "$arg"; done
cat > /tmp/metadata.json <<'EOF'
{
    json.dumps(
        {
            "containerimage.config.digest": "sha256:" + "c0" * 32,
            "containerimage.descriptor": {"digest": "sha256:" + "e5" * 32, "size": 1},
            "containerimage.digest": DIGEST,
            "image.name": "registry.example.com/team/app:1",
        },
        indent=2,
    )
}
EOF
"""


def spec(**changes) -> BuildPod:
    """A BuildKit pod with a context and Dockerfile in subfolders, two platforms, two tags, a
    plain-HTTP registry and a build arg that a shell would split, expand and glob."""
    values = dict(
        tool="buildkit",
        context="app",
        dockerfile="docker/Dockerfile.prod",
        destinations=["registry.example.com/team/app:1", "registry.example.com/team/app:latest"],
        platforms=["linux/amd64", "linux/arm64"],
        cache_repository="registry.example.com/team/app-cache",
        tls_verify=False,
        build_args={"NPM_TOKEN": "npm-value-1", "APP_ENV": 'a b "c" $HOME *'},
    )
    return pod_for(**{**values, **changes})


def build_env(pod: BuildPod) -> dict[str, str]:
    """The build container's environment as the kubelet gives it: plain values, and each
    secretKeyRef read from the Secret."""
    container = pod.pod()["spec"]["containers"][0]
    data = pod.secret()["stringData"]
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = data[var["valueFrom"]["secretKeyRef"]["key"]]
    assert container["command"] == ["sh", "-c", BUILDKIT]
    return env


def run_script(
    docker_client, tmp_path: Path, pod: BuildPod, leave_out: tuple[str, ...] = ()
) -> tuple[int, list[str], list[str]]:
    """(exit status, arguments buildctl was given, the other log lines); `leave_out` names
    Secret keys whose files are missing from the volume."""
    fake = tmp_path / "buildctl-daemonless.sh"
    fake.write_text(RECORDING_BUILDCTL)
    fake.chmod(0o755)
    (tmp_path / "workspace" / "src").mkdir(parents=True)
    credentials = tmp_path / "credentials"  # the Secret volume
    credentials.mkdir()
    for key, value in pod.secret()["stringData"].items():
        if key not in leave_out:
            (credentials / key).write_text(value)
    container = docker_client.containers.run(
        BUSYBOX,
        ["sh", "-c", BUILDKIT],
        environment=build_env(pod),
        volumes={
            str(fake): {"bind": "/bin/buildctl-daemonless.sh", "mode": "ro"},
            str(tmp_path / "workspace"): {"bind": "/workspace", "mode": "rw"},
            str(credentials): {"bind": "/credentials", "mode": "ro"},
        },
        network_mode="none",
        detach=True,
    )
    try:
        status = container.wait(timeout=60)["StatusCode"]
        lines = container.logs().decode().splitlines()
    finally:
        container.remove(force=True)
    args = [x[4:] for x in lines if x.startswith("ARG ")]
    return status, args, [x for x in lines if not x.startswith("ARG ")]


def test_cache_on_imports_and_exports_the_registry_cache(docker_client, tmp_path):
    status, args, log = run_script(docker_client, tmp_path, spec())

    assert status == 0, log
    assert args == [
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        "context=app",
        "--local",
        "dockerfile=docker",
        "--opt",
        "filename=Dockerfile.prod",
        "--opt",
        "platform=linux/amd64,linux/arm64",
        "--output",
        'type=image,"name=registry.example.com/team/app:1,registry.example.com/team/app:latest"'
        ",push=true,registry.insecure=true",
        "--metadata-file",
        "/tmp/metadata.json",
        "--import-cache",
        "type=registry,ref=registry.example.com/team/app-cache",
        "--export-cache",
        "type=registry,ref=registry.example.com/team/app-cache,mode=max",
        "--opt",
        'build-arg:APP_ENV=a b "c" $HOME *',  # neither split, expanded nor globbed
        "--opt",
        "build-arg:NPM_TOKEN=npm-value-1",
    ]
    # The stage reads the pushed image's digest from this line, not the descriptor's.
    assert log[-1] == DIGEST_MARKER + DIGEST


def test_a_build_arg_file_that_cannot_be_read_stops_the_script(docker_client, tmp_path):
    status, args, log = run_script(docker_client, tmp_path, spec(), leave_out=("arg-APP_ENV",))

    assert status != 0
    assert args == []  # buildctl never ran with an empty value
    assert any("arg-APP_ENV" in line for line in log), log
    assert not any(line.startswith(DIGEST_MARKER) for line in log)


def test_cache_off_neither_reads_nor_writes_a_cache(docker_client, tmp_path):
    status, args, log = run_script(
        docker_client, tmp_path, spec(cache=False, tls_verify=True, platforms=["linux/arm64"])
    )

    assert status == 0, log
    assert "--no-cache" in args
    assert not any("cache" in a for a in args if a != "--no-cache")
    assert "platform=linux/arm64" in args
    output = args[args.index("--output") + 1]
    assert output.endswith(",push=true,registry.insecure=false")
    assert log[-1] == DIGEST_MARKER + DIGEST
