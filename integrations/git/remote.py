"""`git ls-remote` with a service's credentials: the branches and tags a repository offers.

Used by Test connection and by the Run dialog's branch/tag picker. Credentials reach git only
through the environment (askpass, or an SSH key file readable by us alone), never argv or URL,
with the same protocol restrictions as the Source stage.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from integrations.git.config import ASKPASS, SAFE_CONFIG, public_url

LS_REMOTE_TIMEOUT = 20  # seconds; a reachable server answers ls-remote in well under one


class GitRemoteError(Exception):
    """git refused or failed; the message is git's own last line, without credentials."""


@dataclass
class RemoteRefs:
    branches: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    head: str = ""  # the branch HEAD points at, when the server says

    def as_probe(self) -> dict:
        summary = f"{len(self.branches)} branches, {len(self.tags)} tags"
        return {"summary": summary, "items": self.branches + self.tags}


def list_remote_refs(
    url: str, username: str = "", token: str = "", ssh_key: str = ""
) -> RemoteRefs:
    """Runs `git ls-remote --symref <url>`; raises GitRemoteError with git's message."""
    with tempfile.TemporaryDirectory(prefix="lsremote-") as tmp:
        home = Path(tmp)
        askpass = home / "askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        ssh = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        if ssh_key:
            key = home / "id"
            key.write_text(ssh_key.strip() + "\n")
            key.chmod(0o600)
            ssh += f" -o IdentitiesOnly=yes -o UserKnownHostsFile={home}/known_hosts -i {key}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_ASKPASS": str(askpass),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_SSH_COMMAND": ssh,
            "WORKFLOWS_GIT_USERNAME": username or ("git" if token else ""),
            "WORKFLOWS_GIT_PASSWORD": token or "",
        }
        try:
            done = subprocess.run(
                ["git", *SAFE_CONFIG, "ls-remote", "--symref", "--", url],
                env=env,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=LS_REMOTE_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise GitRemoteError(
                f"no answer from {public_url(url)} within {LS_REMOTE_TIMEOUT} s"
            ) from None
    if done.returncode != 0:
        raise GitRemoteError(git_message(done.stderr.decode(errors="replace"), token))
    return parse_ls_remote(done.stdout.decode(errors="replace"))


def git_message(stderr: str, token: str = "") -> str:
    """git's error as it printed it (its `fatal:` lines), with any secret masked."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # ssh's own lines ("ssh: connect to host …", "Load key …", "Permission denied
    # (publickey)") say why; git's "Could not read from remote repository" only that it failed.
    important = [
        line
        for line in lines
        if line.startswith(("fatal:", "error:", "remote:", "ssh:", "Load key"))
        or "Permission denied" in line
        or "Host key verification failed" in line
    ]
    text = " ".join(important or lines[-2:]) or "git ls-remote failed"
    if token:
        text = text.replace(token, "***")
    return text


def parse_ls_remote(text: str) -> RemoteRefs:
    refs = RemoteRefs()
    for line in text.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            refs.head = line[5:].split("\t")[0].removeprefix("refs/heads/")
            continue
        _, _, name = line.partition("\t")
        if name.startswith("refs/heads/"):
            refs.branches.append(name.removeprefix("refs/heads/"))
        elif name.startswith("refs/tags/") and not name.endswith("^{}"):
            refs.tags.append(name.removeprefix("refs/tags/"))
    refs.branches.sort()
    refs.tags.sort(reverse=True)
    return refs
