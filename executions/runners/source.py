"""Source stage: checks out the service's repository at the run's ref with the git CLI, or, for
a deploy-only workflow, pins its pre-built image to the digest the registry holds now."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from executions.models import RefKind
from executions.runners.base import Context, Runner, StageError, Terminated
from executions.runners.processes import ProcessGroup
from integrations.git.config import ASKPASS, SAFE_CONFIG, public_url
from integrations.podman.engine import resolve_digest

PROGRESS_RE = re.compile(r"^(remote: )?[\w ]+: +\d+% \(\d+/\d+\)")
# Classification of git's stderr (lower-cased) into the one-line reasons users see.
UNREACHABLE = re.compile(
    r"could not resolve host|failed to connect|connection refused|timed out|unreachable"
    r"|no route to host|couldn't connect|connection reset"
)
AUTH_FAILED = re.compile(
    r"authentication failed|could not read (username|password)|permission denied"
    r"|access denied|returned error: 403"
)
REF_MISSING = re.compile(
    r"not found in upstream|couldn't find remote ref|not our ref|did not match"
    r"|unadvertised object|reference is not a tree|unknown revision|bad object"
)


SSH_KEY_FILE = "git-ssh-key"


def ssh_command(home: Path, with_key: bool) -> str:
    """git's ssh: never prompts; trusts a host key on first use, remembered in `home` only.
    With the service's key, that key alone (`-i`, IdentitiesOnly: no agent, no ~/.ssh keys)."""
    command = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    if with_key:
        command += (
            f" -o IdentitiesOnly=yes -o UserKnownHostsFile={home}/known_hosts"
            f" -i {home}/{SSH_KEY_FILE}"
        )
    return command


@contextlib.contextmanager
def ssh_key_file(home: Path, key: str) -> Iterator[None]:
    """The service's SSH key as a file readable by this user alone (ssh refuses others) for
    the time git runs; removed after, whatever happened."""
    if not key:
        yield
        return
    path = home / SSH_KEY_FILE
    path.unlink(missing_ok=True)
    # Created with mode 600: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(key if key.endswith("\n") else key + "\n")
        yield
    finally:
        path.unlink(missing_ok=True)


HISTORY_COMMITS = 50


class Source(Runner):
    kind = "source"

    def run(self, ctx: Context) -> dict[str, Any]:
        if ctx.workflow.source_kind == "image":
            return self.resolve_image(ctx)
        service = ctx.workflow.service
        execution = ctx.execution
        # A webhook or re-run names the exact commit; the branch may have moved on since.
        self.ref = execution.commit_sha or execution.ref
        self.ctx, self.url = ctx, service.repo_url
        self.ref_missing = False
        self.processes = ProcessGroup(ctx)
        ctx.workspace.mkdir(parents=True, exist_ok=True)
        askpass = ctx.workspace / "git-askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(ctx.workspace),
            "GIT_ASKPASS": str(askpass),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_SSH_COMMAND": ssh_command(ctx.workspace, bool(service.git_ssh_key)),
            "WORKFLOWS_GIT_USERNAME": service.git_username or ("git" if service.git_token else ""),
            "WORKFLOWS_GIT_PASSWORD": service.git_token or "",
        }
        src = ctx.workspace / "src"
        shutil.rmtree(src, ignore_errors=True)
        # The kind of ref comes from where the run came from, never from the name's shape.
        named: dict[str, str] = {}
        with ssh_key_file(ctx.workspace, service.git_ssh_key):
            if execution.commit_sha or execution.ref_kind == RefKind.COMMIT:
                self.fetch_commit(src)
            elif execution.ref_kind == RefKind.TAG:
                self.fetch_tag(src)
            else:
                named = self.clone_branch(src, strict=execution.ref_kind != RefKind.BRANCH_OR_TAG)
        out = self.git("log", "-1", "--format=%H%n%s", cwd=src, quiet=True).splitlines()
        sha, message = out[0], (out[1] if len(out) > 1 else "")
        ctx.log.line(f"Checked out {sha[:12]}: {message}")
        history = self.history(src) if ctx.workflow.deploys else []
        return {"commit_sha": sha, "commit_message": message[:500], "commits": history, **named}

    def history(self, src: Path) -> list[dict[str, str]]:
        """The last HISTORY_COMMITS commits up to the checkout (sha, author, email, ISO date,
        subject, masked), so an approver sees what changed since the release an environment
        runs. The clone is shallow: this deepens it; a server that refuses only shortens the
        list, never fails the run."""
        self.git(
            "fetch", f"--deepen={HISTORY_COMMITS - 1}", "origin", cwd=src, quiet=True, check=False
        )
        out = self.git(
            "log",
            f"-n{HISTORY_COMMITS}",
            "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
            cwd=src,
            quiet=True,
        )
        commits = []
        for row in out.splitlines():
            parts = self.ctx.log.mask(row).split("\x1f")
            if len(parts) == 5:
                sha, author, email, date, subject = parts
                commits.append(
                    {
                        "sha": sha,
                        "author": author,
                        "email": email,
                        "date": date,
                        "subject": subject[:300],
                    }
                )
        return commits

    def clone_branch(self, src: Path, strict: bool) -> dict[str, str]:
        """Clones the branch named `self.ref`. A bare API `ref` (not `strict`) may also name a
        tag, or failing both a commit: what the repository holds says which, and the run
        records it (branch, tag, ref_kind)."""
        clone = ["clone", "--depth", "1", "--single-branch", "--progress"]
        missing = f"branch '{self.ref}' not found in {public_url(self.url)}" if strict else ""
        try:
            self.git(
                *clone, "--branch", self.ref, "--", self.url, "src", cwd=src.parent, missing=missing
            )
        except StageError:
            if strict or not self.ref_missing:
                raise
            self.ctx.log.line(f"No branch or tag is named {self.ref}; trying it as a commit id")
            shutil.rmtree(src, ignore_errors=True)
            self.fetch_commit(
                src, f"no branch, tag or commit '{self.ref}' in {public_url(self.url)}"
            )
            return {"ref_kind": RefKind.COMMIT, "branch": "", "tag": ""}
        head = self.git("symbolic-ref", "-q", "HEAD", cwd=src, quiet=True, check=False).strip()
        if head == f"refs/heads/{self.ref}":
            return {"ref_kind": RefKind.BRANCH, "branch": self.ref, "tag": ""}
        if strict:  # git clone --branch falls back to a tag of that name: not what was asked
            raise StageError(f"branch '{self.ref}' not found in {public_url(self.url)}")
        return {"ref_kind": RefKind.TAG, "branch": "", "tag": self.ref}

    def fetch_tag(self, src: Path) -> None:
        src.mkdir(parents=True)
        self.git("init", "-q", cwd=src)
        self.git("remote", "add", "origin", self.url, cwd=src)
        missing = f"tag '{self.ref}' not found in {public_url(self.url)}"
        refspec = f"+refs/tags/{self.ref}:refs/tags/{self.ref}"
        self.git("fetch", "--depth", "1", "--progress", "origin", refspec, cwd=src, missing=missing)
        self.git("checkout", "-q", "--detach", f"refs/tags/{self.ref}", cwd=src, missing=missing)

    def resolve_image(self, ctx: Context) -> dict[str, Any]:
        """Deploy-only: the image to deploy, pinned to the digest its registry serves now."""
        workflow, service = ctx.workflow, ctx.workflow.service
        # The Run dialog's (or API's) image tag, else the workflow's image as configured.
        ref = (ctx.execution.image or workflow.source_image or service.image or "").strip()
        if not ref:
            raise StageError("no image to deploy: set the workflow's or the service's image")
        ctx.log.line(f"Resolving {ref} in its registry")
        digest = resolve_digest(ref, service.image_registry or workflow.registry)
        ctx.log.line(f"{ref} is {digest}")
        return {"image": ref, "image_digest": digest}

    def fetch_commit(self, src: Path, missing: str = "") -> None:
        """A SHA cannot be cloned by name: fetch just that commit, or everything if the server
        does not allow fetching unadvertised commits."""
        src.mkdir(parents=True)
        self.git("init", "-q", cwd=src)
        self.git("remote", "add", "origin", self.url, cwd=src)
        try:
            self.git("fetch", "--depth", "1", "--progress", "origin", self.ref, cwd=src)
            target = "FETCH_HEAD"
        except StageError:
            if not self.ref_missing:
                raise
            self.ctx.log.line("The server refused a shallow fetch of the commit; fetching all")
            heads, tags = "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"
            self.git("fetch", "--progress", "origin", heads, tags, cwd=src)
            target = self.ref
        missing = missing or f"commit '{self.ref}' not found in {public_url(self.url)}"
        # What the fetch brought must be a commit: `git checkout` would read any other name as
        # a path and answer with its own words, not that the commit is missing.
        found = self.git(
            "rev-parse",
            "--verify",
            "--quiet",
            f"{target}^{{commit}}",
            cwd=src,
            quiet=True,
            check=False,
        )
        if not found.strip():
            raise StageError(missing)
        self.git("checkout", "-q", "--detach", target, cwd=src, missing=missing)

    def git(
        self,
        *args: str,
        cwd: Path | None = None,
        quiet: bool = False,
        missing: str = "",
        check: bool = True,
    ) -> str:
        """Runs git in its own process group (so termination kills it and its helpers), logs
        its progress, returns its stdout and turns a failure into a one-line StageError."""
        if not quiet:
            self.ctx.log.line("$ git " + " ".join(public_url(a) for a in args))
        proc = self.processes.start(["git", *SAFE_CONFIG, *args], cwd=cwd, env=self.env)
        errors, pending = [], b""
        stderr = cast(io.BufferedReader, proc.stderr)  # a binary PIPE, asked for above
        for block in iter(lambda: stderr.read1(4096), b""):
            *lines, pending = re.split(rb"[\r\n]", pending + block)
            for line in (x.decode(errors="replace").strip() for x in lines):
                if line and (not PROGRESS_RE.match(line) or "done" in line):
                    self.ctx.log.line(line)
                    errors.append(line)
        stdout = cast(IO[bytes], proc.stdout).read().decode(errors="replace")
        code = self.processes.wait()
        if self.ctx.cancelled.is_set():
            raise Terminated()
        if code != 0 and check:
            raise self.failure("\n".join([*errors, pending.decode(errors="replace")]), missing)
        return stdout

    def failure(self, stderr: str, missing: str) -> StageError:
        text, url = stderr.lower(), public_url(self.url)
        lines = [x.strip() for x in stderr.splitlines() if x.strip()]
        # ssh's own line says what went wrong; git's following ones only that it did.
        last = next((x for x in lines if x.startswith("ssh:")), lines[-1] if lines else "")
        last = last or "git failed"
        detail = re.sub(r"^(fatal|error): (unable to access '[^']*': )?", "", last.strip())
        if UNREACHABLE.search(text):
            host = urlsplit(url).hostname or url.split("@")[-1].split(":")[0]
            return StageError(f"cannot reach {host}: {detail}", system=True, retryable=True)
        if AUTH_FAILED.search(text):
            return StageError(f"authentication failed for {url}")
        if REF_MISSING.search(text):
            self.ref_missing = True
            return StageError(missing or f"branch or tag '{self.ref}' not found in {url}")
        if "not found" in text or "does not appear to be a git repository" in text:
            return StageError(f"repository not found: {url}")
        return StageError(f"git failed: {detail}")
