"""scripts/sweep_port_forwards.py, which `scripts/services start` runs before podman starts:
the port forward of a pod whose processes were killed goes, a running pod's stays."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.base import wait_for
from tests.deploy import free_ports
from tests.realparts import BASE_IMAGE, unique_name

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("iptables"), reason="needs root and iptables"
    ),
]


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=120, check=True
    ).stdout


def forwards(port: int) -> list[str]:
    rules = subprocess.run(
        ["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in rules.splitlines() if f"--dport {port}" in line and "DNAT" in line]


def play(tmp_path: Path, port: int) -> str:
    name = unique_name("fwd")
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Pod
            metadata: {{name: {name}}}
            spec:
              containers:
              - name: web
                image: {BASE_IMAGE}
                command: ["sh", "-c", "exec httpd -f -p {port} -h /"]
                ports: [{{containerPort: {port}, hostPort: {port}, hostIP: 127.0.0.1}}]
            """
        )
    )
    podman("play", "kube", str(manifest))
    return name


def sweep() -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/sweep_port_forwards.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stderr


def test_a_killed_pods_port_forward_goes_and_a_running_ones_stays(real_services, tmp_path):
    killed_port = free_ports(1, 21600)
    running_port = free_ports(1, killed_port + 1)
    killed, running = play(tmp_path, killed_port), play(tmp_path, running_port)
    try:
        assert forwards(killed_port) and forwards(running_port)
        # Every process of the pod, its infra container's too, as when a machine's processes
        # are stopped under a running engine.
        gone: list[int] = []
        containers = podman("pod", "inspect", "-f", "{{range .Containers}}{{.Id}} {{end}}", killed)
        for container in containers.split():
            pids = podman("inspect", "-f", "{{.State.Pid}} {{.State.ConmonPid}}", container)
            for pid in {int(p) for p in pids.split()} - {0}:
                os.kill(pid, signal.SIGKILL)
                gone.append(pid)
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in gone), 10, "reaped")

        said = sweep()

        assert forwards(killed_port) == []
        assert "removed" in said and "leaked port forward" in said
        assert forwards(running_port)  # its processes run: untouched
        assert "leaked" not in sweep()  # nothing left to remove
    finally:
        for pod in (killed, running):
            subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", pod], capture_output=True)
