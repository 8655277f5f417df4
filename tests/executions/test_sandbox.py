"""User code runs in a box: a Dockerfile RUN step and a script cannot reach the control plane's
loopback services (web 127.0.0.1:8000, git server :8001, registry :5000), which the same probe
from the host does reach. Issue 10, part 2."""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import threading
import time

import pytest

from executions.status import ExecutionStatus as S
from tests.executions import log_text, make_git_workflow, run_now
from tests.realparts import sample_app_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

CONTROL_PLANE_PORTS = (8000, 8001, 5000)
# busybox's nc exits 0 only when the connection opens.
PROBE = (
    "for target in {targets}; do "
    'if nc -w 2 "${{target%:*}}" "${{target#*:}}" </dev/null >/dev/null 2>&1; '
    'then echo "REACHED $target"; else echo "BLOCKED $target"; fi; done'
)


def bind_or_reuse(port: int) -> socket.socket | None:
    """A listening socket on 127.0.0.1:port, or None when a service already listens there.
    A port held only by a closed connection in TIME-WAIT is waited for (at most 2 minutes)."""
    deadline = time.monotonic() + 120
    while True:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(16)
            return sock
        except OSError as exc:
            sock.close()
            assert exc.errno == errno.EADDRINUSE, exc
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
            return None
        assert time.monotonic() < deadline, f"127.0.0.1:{port} neither free nor served"
        time.sleep(1)


@contextlib.contextmanager
def listening(ports):
    """Something listens on 127.0.0.1 at each port: the service already there, or a socket
    opened here (plus one on a free port), so a probe that gets through really connects."""
    opened = [bind_or_reuse(port) for port in [*ports, 0]]
    opened = [sock for sock in opened if sock is not None]
    free = opened[-1].getsockname()[1]
    stop = threading.Event()

    def accept(sock):
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                sock.accept()[0].close()

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in opened]
    for thread in threads:
        thread.start()
    try:
        yield [*ports, free]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in opened:
            sock.close()


def probe(targets: list[str]) -> str:
    return PROBE.format(targets=" ".join(targets))


def test_build_and_script_cannot_reach_loopback_services(engine, project, registry, git_server):
    with listening(CONTROL_PLANE_PORTS) as ports:
        targets = [f"127.0.0.1:{port}" for port in ports]
        # The same probe from the host gets through: the test can fail.
        host = subprocess.run(
            ["busybox", "sh", "-c", probe(targets)], capture_output=True, text=True, timeout=60
        )
        assert host.stdout.split("\n")[:-1] == [f"REACHED {t}" for t in targets], host

        dockerfile = f"FROM localhost/busybox:latest\nRUN echo build-probe; {probe(targets)}\n"
        workflow, _ = make_git_workflow(
            project,
            git_server,
            sample_app_files(extra={"Dockerfile": dockerfile}),
            registry=registry,
            scripts={"pre_build": f"echo script-probe; {probe(targets)}"},
        )
        execution = run_now(workflow)

    assert execution.status == S.SUCCEEDED, execution.status_reason
    log = log_text(execution)
    script_part, build_part = log.split("build-probe", 1)[0], log.split("build-probe", 1)[1]
    assert "script-probe" in script_part
    for target in targets:
        assert f"BLOCKED {target}" in script_part, script_part
        assert f"BLOCKED {target}" in build_part, build_part
    assert "REACHED 127" not in log, log
