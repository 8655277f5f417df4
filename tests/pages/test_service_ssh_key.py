"""SSH-key credentials of a service: write-only and encrypted like the token, used by Test
connection (`git ls-remote`) and by the Source stage.

There is no SSH server on this machine, so no clone over SSH succeeds here. What is tested is
everything up to the server: the key is accepted or refused with the API's message, never shown
again (page, API, admin), the command the stage builds (`ssh … -i <workspace>/git-ssh-key`,
the file mode 600 while git runs, removed after), and ssh's own error (connection refused on a
port nobody listens on) shown next to the field and as the stage's error, masked.
"""

from __future__ import annotations

import hashlib
import json
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from executions.engine import workspace_of
from executions.status import ExecutionStatus
from tests import base
from tests.executions import log_text, run_now
from tests.pages.test_setup_pages import HX, client_of, poll
from tests.realparts import unique_name
from workflows.models import Service

pytestmark = pytest.mark.django_db(transaction=True)


def private_key(passphrase: str = "") -> str:
    """A new ed25519 key in OpenSSH's format, made by ssh-keygen as a user would."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "id"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", str(path)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return path.read_text()


def body_lines(key: str) -> list[str]:
    """The key's secret lines (not its BEGIN/END armour)."""
    return [line for line in key.splitlines() if line and not line.startswith("-----")]


def closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_key_is_accepted_and_never_shown_again(users, project):
    key = private_key()
    client = client_of(users["bob"])
    url = f"/projects/{project.pk}/services/new/"
    repo = "ssh://git@git.example.org/team/app.git"
    windows = key.replace("\n", "\r\n")  # as pasted from some editors
    created = client.post(url, {"name": "viassh", "repo_url": repo, "git_ssh_key": windows})
    assert created.status_code == 302
    service = Service.objects.get(project=project, name="viassh")
    assert service.git_ssh_key == key  # Unix line ends, one final newline
    api = base.client_for(users["bob"]).get(f"/api/services/{service.pk}/").json()
    assert api["has_git_ssh_key"] is True and "git_ssh_key" not in api
    admin = User.objects.create_superuser("root", "root@example.org", "pw")
    pages = [
        client.get(f"/projects/{project.pk}/").content.decode(),
        client.get(created["Location"]).content.decode(),
        json.dumps(api),
        client_of(admin).get(f"/admin/workflows/service/{service.pk}/change/").content.decode(),
    ]
    for page in pages:
        assert not any(line in page for line in body_lines(key))
    # The admin's change form shows the field empty, says it is set, and keeps it when blank.
    assert "Set. Leave blank to keep it." in pages[-1]


@pytest.mark.parametrize(
    "key, message",
    [
        (private_key("secret-passphrase"), "the key is protected by a passphrase"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnot-a-key\n", "not an SSH private key"),
    ],
)
def test_unusable_key_refused_with_the_api_message_and_not_shown(users, project, key, message):
    client = client_of(users["bob"])
    form = {"name": "badkey", "repo_url": "ssh://git@git.example.org/a.git", "git_ssh_key": key}
    page = client.post(f"/projects/{project.pk}/services/new/", form)
    assert page.status_code == 400
    html = page.content.decode()
    assert 'data-testid="error-git_ssh_key"' in html and message in html
    assert not any(line in html for line in body_lines(key))
    api = base.client_for(users["bob"]).post(
        "/api/services/", {**form, "project": project.pk}, format="json"
    )
    assert api.status_code == 400
    errors = {e["field"]: e["message"] for e in api.json()["errors"]}
    assert message in errors["git_ssh_key"]
    assert not Service.objects.filter(name="badkey").exists()


def test_test_connection_shows_ssh_own_error(users, project):
    port = closed_port()
    client = client_of(users["bob"])
    response = client.post(
        f"/projects/{project.pk}/services/test/",
        {"repo_url": f"ssh://git@127.0.0.1:{port}/team/app.git", "git_ssh_key": private_key()},
        **HX,
    )
    assert response["HX-Retarget"] == "#id_repo_url_probe"
    html = poll(client, response)
    assert 'data-testid="probe-error"' in html
    assert f"ssh: connect to host 127.0.0.1 port {port}: Connection refused" in html


SPY = """#!/bin/sh
# Records how git calls ssh and the key file as ssh finds it, then runs the real ssh.
key=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "-i" ]; then key="$arg"; fi
  prev="$arg"
done
{{
  printf 'args=%s\\n' "$*"
  printf 'key=%s\\n' "$key"
  printf 'mode=%s\\n' "$(stat -c %a "$key")"
  printf 'sha256=%s\\n' "$(sha256sum "$key" | cut -d' ' -f1)"
}} >> {record}
exec /usr/bin/ssh "$@"
"""


@pytest.mark.engine
def test_source_stage_uses_the_key_and_removes_it(
    settings, real_services, project, monkeypatch, tmp_path
):
    """The spy only watches: the real ssh runs and fails on its own (no SSH server here)."""
    settings.DOCKER_HOST = real_services["DOCKER_HOST"]
    record = tmp_path / "ssh-calls"
    spy = tmp_path / "bin" / "ssh"
    spy.parent.mkdir()
    spy.write_text(SPY.format(record=record))
    spy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy.parent}:/usr/bin:/bin")
    key, port = private_key(), closed_port()
    service = base.make_service(
        project,
        name=unique_name("ssh"),
        repo_url=f"ssh://git@127.0.0.1:{port}/team/app.git",
        git_ssh_key=key,
    )
    execution = run_now(service.workflows.get())
    assert execution.status == ExecutionStatus.ERROR
    expected = f"Source: cannot reach 127.0.0.1: ssh: connect to host 127.0.0.1 port {port}"
    assert execution.status_reason.startswith(expected)
    calls = dict(line.split("=", 1) for line in record.read_text().splitlines())
    key_file = workspace_of(execution) / "git-ssh-key"
    assert calls["key"] == str(key_file)
    assert "-o BatchMode=yes" in calls["args"] and "-o IdentitiesOnly=yes" in calls["args"]
    assert calls["mode"] == "600"
    assert calls["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert workspace_of(execution).is_dir() and not key_file.exists()
    log = log_text(execution)
    assert not any(line in log for line in body_lines(key))


def test_key_file_is_written_600_and_removed_after_a_failure(tmp_path: Path):
    from executions.runners.source import ssh_key_file

    key = private_key()
    with pytest.raises(RuntimeError), ssh_key_file(tmp_path, key):
        path = tmp_path / "git-ssh-key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == key
        raise RuntimeError("git failed")
    assert not path.exists()
