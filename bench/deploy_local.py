"""Deploy stage time on the local target vs `podman kube play` of the same manifest by hand.

Self-contained: starts the local parts (scripts/services), makes a fresh SQLite database under
.run/bench-deploy/, builds the sample app (busybox httpd) and pushes it to the open registry,
then alternates in one run:

- engine: a run of a deploy-only App CD workflow through the worker's task function; the time is
  the Deploy stage's (its StageRun started_at → finished_at: lock, checks, secrets, kube play
  over podman's REST API, waiting until the app answers on localhost, recording the release);
- by hand: `podman --url <DOCKER_HOST> kube play <file>` of the very manifest the deploy played,
  then polling the same URL until it answers (the same end state).

Both start with nothing running on the port (the previous pod is removed between rounds,
outside the timing). Prints each round, the medians and their ratio (goal ≤ 1.2).

    .venv/bin/python bench/deploy_local.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fresh_database() -> None:
    run_dir = ROOT / ".run" / "bench-deploy"
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / f"bench-{os.getpid()}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "atmosly.settings"
    os.environ["EXECUTIONS_RUN_INLINE"] = "false"


def answered(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    from tests.realparts import sample_app_files, start_real_services, tar_context, unique_name

    services = start_real_services()
    fresh_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import docker

    from executions.engine import run_execution
    from executions.models import Release
    from executions.services import do_create_execution
    from integrations.kubernetes.manifests import build_manifests, workload
    from integrations.kubernetes.spec import deploy_spec
    from integrations.local_engine.podman import Podman
    from integrations.local_engine.target import INSTANCE_LABEL, local_manifest
    from tests import base
    from tests.deploy import free_ports

    client = docker.DockerClient(base_url=services["DOCKER_HOST"], timeout=300)
    ref = f"{services['ATMOSLY_TEST_REGISTRY']}/workflows-bench/deploy-app:1"
    for chunk in client.api.build(
        fileobj=tar_context(sample_app_files(run_steps=0, marker="bench")),
        custom_context=True,
        tag=ref,
        rm=True,
        forcerm=True,
        decode=True,
    ):
        assert "error" not in chunk, chunk
    for chunk in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
        assert "error" not in chunk, chunk

    users = base.make_users()
    project = base.make_project(users, name=unique_name("bench"))
    base.make_environments(project, names=("dev",))
    service = base.make_service(project, name="web")
    port = free_ports(1, 23000)
    workflow = base.save_document(
        service,
        {
            "name": "release",
            "pipeline_type": "app_cd",
            "source": {"kind": "image", "image": ref},
            "build": {},
            "push": {},
            "scripts": {},
            "scanners": {},
            "layout": {},
            "deploy": {"port": port, "environments": [{"environment": "dev"}]},
        },
    )
    url = f"http://127.0.0.1:{port}/"
    podman = Podman()
    label = f"{INSTANCE_LABEL}={project.name}-web-release-dev"

    def clear() -> None:
        for pod in podman.pods(label):
            podman.request("POST", f"/libpod/pods/{pod['Id']}/kill")
            podman.remove_pod(pod["Id"])

    def engine_round() -> float:
        clear()
        execution = do_create_execution(workflow, ref="main", trigger="manual")
        status = run_execution(execution.pk)
        assert status == "succeeded", execution.status_reason
        stage = execution.stages.get(kind="deploy")
        return (stage.finished_at - stage.started_at).total_seconds()

    engine_times, hand_times = [engine_round()], []  # one warm-up round, not counted
    release = Release.objects.latest("created_at")
    spec = deploy_spec(
        workflow=workflow,
        environment=release.environment,
        name=f"{project.name}-web-release-dev",
        image=release.image,
        digest=release.image_digest,
        commit="",
        execution_id=release.execution_id,
        runtime_env={},
        secret_keys=set(),
    )
    from dataclasses import replace

    manifest = local_manifest(workload(build_manifests(replace(spec, host_port=port))))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        json.dump(manifest, handle)
    command = ["podman", "--url", services["DOCKER_HOST"], "kube", "play", handle.name]

    def hand_round() -> float:
        clear()
        started = time.monotonic()
        subprocess.run(command, check=True, capture_output=True)
        answered(url, started + 30)
        return time.monotonic() - started

    engine_times = []
    for index in range(args.rounds):
        engine_times.append(engine_round())
        hand_times.append(hand_round())
        print(
            f"round {index + 1:2d}: deploy stage {engine_times[-1] * 1000:7.1f} ms, "
            f"kube play by hand {hand_times[-1] * 1000:7.1f} ms"
        )
    clear()
    os.unlink(handle.name)
    engine, hand = statistics.median(engine_times), statistics.median(hand_times)
    print(f"median deploy stage on the local target: {engine * 1000:.1f} ms")
    print(f"median podman kube play by hand (+ until it answers): {hand * 1000:.1f} ms")
    print(f"ratio of medians: {engine / hand:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
