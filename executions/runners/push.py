"""Push stage: tags the built image for the workflow's registry and pushes it there."""

from __future__ import annotations

import contextlib
import re
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import docker

from executions.runners.base import Context, Runner, StageError, Terminated
from integrations.errors import ProviderError
from integrations.podman.engine import (
    LOCAL_HOSTS,
    StreamCloser,
    connect,
    json_messages,
    one_line,
)
from integrations.podman.manifests import ManifestError, create_list, push_list, remove_list
from integrations.registries import RegistryAuth, RegistryError, get_provider, image_name

DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
INVALID_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# Where the useful part of podman's long chained error messages starts.
REFUSED = ("unauthorized", "denied", "forbidden", "authentication required")
UNREACHABLE = ("dial tcp", "no such host", "connection refused", "timeout", "tls:", "x509")
# Runs of one commit share the registry tag `repo:<sha>`: one run's untag after its push would
# remove the tag another run of this worker process had just set, before that one pushed it.
# One push at a time per tag (a fixed set of locks: tags that share one only wait a little).
TAG_LOCKS = [threading.Lock() for _ in range(64)]


@contextlib.contextmanager
def holding_tags(ctx: Context, names: list[str]) -> Iterator[None]:
    """Holds the locks of the registry tags `names` (sorted, so two runs never wait on each
    other in a cycle), checking for termination while it waits."""
    with contextlib.ExitStack() as stack:
        for index in sorted({zlib.crc32(name.encode()) % len(TAG_LOCKS) for name in names}):
            while not TAG_LOCKS[index].acquire(timeout=0.2):
                ctx.check_cancelled()
            stack.callback(TAG_LOCKS[index].release)
        yield


def render_tag(template: str, *, branch: str, sha: str, number: int) -> str:
    values = {
        "branch": branch.replace("/", "-"),
        "sha": sha,
        "short_sha": sha[:12],
        "number": number,
        "timestamp": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
    }
    try:
        tag = template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise StageError(f"tag template '{template}' is not valid: {exc}") from exc
    tag = INVALID_TAG_CHARS.sub("-", tag).lstrip(".-")[:128]
    return tag or sha[:12]


def push_error(message: str, host: str) -> StageError:
    low = message.lower()
    starts = [low.find(k) for k in (*UNREACHABLE, *REFUSED) if k in low]
    reason = one_line(message[min(starts) :] if starts else message)
    if any(k in low for k in UNREACHABLE) and not any(k in low for k in REFUSED):
        return StageError(f"cannot reach registry {host}: {reason}", system=True, retryable=True)
    return StageError(f"registry refused the push: {reason}")


class Push(Runner):
    kind = "push"

    def run(self, ctx: Context) -> dict[str, Any]:
        workflow, execution = ctx.workflow, ctx.execution
        if ctx.outputs.get("pushed_by") == "kubernetes":
            ctx.log.line(f"The Kubernetes build pod pushed {ctx.outputs['image']} already")
            return {}
        if workflow.registry is None or not workflow.repository:
            raise StageError("no registry and repository are set for the push")
        image_id = ctx.outputs.get("image_id")
        if not image_id:
            raise StageError("there is no built image to push", system=True)
        try:
            auth = get_provider(workflow.registry.provider).login(workflow.registry)
        except RegistryError as exc:
            raise StageError(f"registry login failed: {one_line(exc)}") from exc
        if auth.password:
            ctx.log.add_secrets([auth.password])  # tokens minted at login (ECR) are new secrets
        client = connect()
        closer = StreamCloser(client)
        ctx.on_cancel(closer.close)  # the push stops at the next layer; the registry keeps none
        repo = image_name(auth.host, workflow.repository)
        sha = ctx.outputs.get("commit_sha") or execution.commit_sha
        tags = [sha]
        # {branch} is the branch, or the tag for a tag run (Source may have just learnt which).
        name = ctx.outputs.get("branch", execution.branch) or ctx.outputs.get("tag", execution.tag)
        tag = render_tag(workflow.tag_template, branch=name, sha=sha, number=execution.number)
        if tag != sha:
            tags.append(tag)
        images = ctx.outputs.get("platform_images") or {}
        if len(images) > 1:
            digest = self.push_list(ctx, client, repo, tags, auth, images)
            return {
                "image": f"{repo}:{sha}",
                "image_digest": digest,
                "image_tags": tags,
                "image_architectures": sorted(p.rpartition("/")[2] for p in images),
            }
        digest, started = "", time.monotonic()
        with holding_tags(ctx, [f"{repo}:{tag}" for tag in tags]):
            try:
                for tag in tags:
                    client.api.tag(image_id, repo, tag)
                    ctx.log.line(f"Pushing {repo}:{tag}")
                    digest = self.push(ctx, client, repo, tag, auth) or digest
            except docker.errors.APIError as exc:
                if ctx.cancelled.is_set():
                    raise Terminated() from exc
                raise push_error(str(exc.explanation or exc), auth.host) from exc
            except Exception as exc:  # the stream was cut: by termination, or the engine died
                if ctx.cancelled.is_set():
                    raise Terminated() from exc
                if isinstance(exc, (StageError, ProviderError)):
                    raise
                raise StageError(
                    f"image engine connection lost during the push: {one_line(exc)}", system=True
                ) from exc
            finally:
                # The registry has the image now; later stages (post-push script) use the build's
                # local tag, which the engine removes when the run ends. Per-commit registry tags
                # would only pile up here.
                for tag in tags:
                    # Never tagged, or the engine went away: nothing to undo.
                    with contextlib.suppress(Exception):
                        client.api.remove_image(f"{repo}:{tag}", noprune=True)
        ctx.check_cancelled()
        if not digest:
            raise StageError("the registry did not report the pushed digest", system=True)
        ctx.log.line(f"Pushed {repo}:{sha} ({digest}) in {time.monotonic() - started:.1f} s")
        architecture = ""
        with contextlib.suppress(docker.errors.APIError):  # only the deploy's check needs it
            architecture = client.api.inspect_image(image_id).get("Architecture", "")
        return {
            "image": f"{repo}:{sha}",
            "image_digest": digest,
            "image_tags": tags,
            "image_architectures": [architecture] if architecture else [],
        }

    def push_list(
        self,
        ctx: Context,
        client: docker.DockerClient,
        repo: str,
        tags: list[str],
        auth: RegistryAuth,
        images: dict[str, str],
    ) -> str:
        """A multi-arch build: one manifest list of the per-platform images, pushed with them
        under each tag. Returns the index digest (what a pull by digest resolves per platform)."""
        name = f"workflows-exec-{ctx.execution.pk}-list-{ctx.stage.pk}"
        # Docker Hub images are addressed without their host by the engine, not by libpod.
        destination = repo if repo.startswith(f"{auth.host}/") else f"docker.io/{repo}"
        registry = ctx.workflow.registry
        insecure = bool(registry and registry.insecure) or auth.host.split(":")[0] in LOCAL_HOSTS
        digest, started = "", time.monotonic()
        try:
            create_list(client, name, list(images.values()))
            for tag in tags:
                ctx.check_cancelled()
                ctx.log.line(f"Pushing {repo}:{tag} as a manifest list of {', '.join(images)}")
                digest = push_list(
                    client, name, f"{destination}:{tag}", auth.auth_config(), not insecure
                )
        except ManifestError as exc:
            raise push_error(str(exc), auth.host) from exc
        except Terminated:
            raise
        except Exception as exc:  # the request was cut: by termination, or the engine died
            if ctx.cancelled.is_set():
                raise Terminated() from exc
            raise StageError(
                f"image engine connection lost during the push: {one_line(exc)}", system=True
            ) from exc
        finally:
            remove_list(client, name)
        ctx.check_cancelled()
        ctx.log.line(f"Pushed {repo}:{tags[0]} ({digest}) in {time.monotonic() - started:.1f} s")
        return digest

    def push(
        self, ctx: Context, client: docker.DockerClient, repo: str, tag: str, auth: RegistryAuth
    ) -> str:
        """Streams one push; podman and Docker both report errors inside the stream."""
        digest, seen = "", set()
        # podman reports nothing while a layer uploads: no read timeout (the stage has one).
        client.api.timeout = None  # type: ignore[assignment]  # requests takes None; stubs say int
        stream = client.api.push(repo, tag=tag, stream=True, auth_config=auth.auth_config())
        for chunk in json_messages(stream):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                raise push_error(chunk.get("error") or detail.get("message", ""), auth.host)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
            status = chunk.get("status", "")
            found = DIGEST_RE.search(status)
            digest = found.group(1) if found else digest
            # One line per layer and state: progress bars would flood the log.
            key = (chunk.get("id", ""), status)
            if status and key not in seen:
                seen.add(key)
                ctx.log.line(f"{chunk['id']}: {status}" if chunk.get("id") else status)
        return digest
