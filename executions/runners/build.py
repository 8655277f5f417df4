"""Build stage: builds the checkout's Dockerfile on the image engine and streams its output."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import docker

from executions.runners.base import Context, Runner, StageError, Terminated
from executions.runners.kubernetes_build import KubernetesBuild
from executions.runners.sandbox import build_network, secret_context, split_build_variables
from integrations.git.config import public_url
from integrations.podman import buildsteps
from integrations.podman.engine import (
    StreamCloser,
    connect,
    is_local_socket,
    is_podman,
    json_messages,
    one_line,
)
from integrations.podman.layercache import (
    RegistryCache,
    arch_of,
    drop_layer_cache,
    keep_layer_cache,
)

# podman's words when its layer store changed under a build's cache lookup.
STORAGE_RACE = "layer not known"
# podman before 4.6 (buildah before 1.31; Debian 12 has 4.3.1) runs each RUN step under a
# `buildah-oci-runtime` subprocess started with PR_SET_PDEATHSIG=SIGKILL. Linux sends that signal
# when the *thread* that forked the subprocess ends, and the engine's Go runtime ends a thread
# each time it makes a network namespace (containers/common's NewNS: every RUN step and
# container, of any build or run on the engine). So with builds at once a step now and then dies
# though nobody killed it: "while running runtime: signal: killed", or, killed while starting,
# "did not get container create message from subprocess" (containers/podman#17918, fixed by
# containers/buildah#4790). Kills by this product go to the step's container (`runc kill`) and
# read "exit status 137", never these.
ENGINE_KILLED_STEP = (
    "while running runtime: signal: killed",
    "did not get container create message from subprocess",
)
# How many times a build whose step the engine killed itself is started again.
ENGINE_KILLED_RETRIES = 2
# How long termination tries killing podman build steps before it also cuts the stream.
KILL_STEPS_SECONDS = 8.0
# After cutting the stream podman may still start later RUN steps; keep killing them this long.
REAP_SECONDS = 60.0


def inside(root: Path, relative: str, what: str) -> Path:
    """`relative` resolved (symlinks too) and refused if it leaves the checkout."""
    path = (root / (relative or ".")).resolve()
    if not path.is_relative_to(root):
        raise StageError(f"{what} '{relative}' points outside the repository")
    return path


def labelled_dockerfile(dockerfile: Path, copy: Path, labels: dict[str, str]) -> Path:
    """`dockerfile` with one `LABEL` instruction for `labels` appended (it applies to the last
    stage, the one built), written to `copy` outside the build context: the docker SDK then
    sends it inside the context under a name of its own. Returns `copy`."""
    quoted = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in labels.items())
    copy.write_bytes(dockerfile.read_bytes().rstrip(b"\n") + f"\nLABEL {quoted}\n".encode())
    return copy


class Build(Runner):
    kind = "build"

    def run(self, ctx: Context) -> dict[str, Any]:
        if ctx.workflow.builder == "kubernetes":
            return KubernetesBuild().run(ctx)
        workflow, execution = ctx.workflow, ctx.execution
        src = (ctx.workspace / "src").resolve()
        context_dir = inside(src, workflow.build_context, "build context")
        dockerfile = inside(src, workflow.dockerfile, "Dockerfile")
        if not context_dir.is_dir():
            raise StageError(f"build context '{workflow.build_context}' is not a directory")
        if not dockerfile.is_file():
            raise StageError(
                f"Dockerfile not found: '{workflow.dockerfile}' is not in the repository"
            )
        client = connect()
        podman = is_podman(client)
        # Derived from the stage run, so a worker recovering this run can stop the build if
        # this one dies; it keeps two installations (or test sessions) sharing an engine apart.
        assert ctx.stage.started_at is not None  # set when the stage moved to Running
        token = buildsteps.build_token(execution.pk, ctx.stage.pk, ctx.stage.started_at)
        tag = f"localhost/workflows/exec-{execution.pk}:build-{token[-8:]}"
        sha = ctx.outputs.get("commit_sha") or execution.commit_sha
        build_args, self.build_secrets = split_build_variables(ctx.build_args, set(ctx.secrets))
        if self.build_secrets and not podman:
            raise StageError(
                "secret build-time variables are passed as build secrets, which this engine's "
                "API does not take (Docker Engine needs BuildKit); use podman's engine",
                system=True,
            )
        network_args, self.query = build_network(podman)
        # The registry cache needs buildah's cache options: podman's engine only.
        self.cache = RegistryCache.for_workflow(workflow, ctx.log.line) if podman else None
        if self.cache is not None:
            if self.cache.auth.password:
                ctx.log.add_secrets([self.cache.auth.password])
            self.cache.authorize(client)
            self.query.update(self.cache.query())
            ctx.log.line(f"Layer cache: this engine's, and the registry's {self.cache.repository}")
        # The image's labels as one LABEL step at the end of a copy of the Dockerfile: podman
        # makes each label given to its build API a step of its own (a commit and, with the
        # registry cache, a cache push each: about 0.45 s a label on a warm build here).
        dockerfile = labelled_dockerfile(
            dockerfile,
            ctx.workspace / "Dockerfile.workflows",
            {
                "org.opencontainers.image.revision": sha,
                "org.opencontainers.image.source": public_url(workflow.service.repo_url),
                # The run makes each run's image its own, even from one commit with every layer
                # cached: runs of one commit at once never share (and delete) one image id.
                "io.atmosly.execution": str(execution.pk),
                "io.atmosly.workflow": str(workflow.pk),
            },
        )
        self.context_dir, self.dockerfile = context_dir, dockerfile
        options: dict[str, Any] = {
            "path": str(context_dir),
            "dockerfile": str(dockerfile),
            "tag": tag,
            "buildargs": build_args,
            "platform": workflow.platform,
            "nocache": not workflow.cache_enabled,
            "rm": True,
            "forcerm": True,
            "decode": False,  # json_messages decodes: see there why
            "pull": False,
            "timeout": None,  # a silent RUN step may last as long as the stage timeout
            **network_args,
        }
        if podman:
            options["extra_hosts"] = buildsteps.extra_hosts(token)
        closer = StreamCloser(client)
        finished = threading.Event()
        kill_steps = podman and is_local_socket(client)
        self.token, self.kill_steps = token, kill_steps
        ctx.on_cancel(
            lambda: threading.Thread(
                target=self.stop, args=(closer, token, finished, kill_steps), daemon=True
            ).start()
        )
        if self.build_secrets:
            names = ", ".join(sorted(self.build_secrets))
            ctx.log.line(
                f"Build secrets (read them with RUN --mount=type=secret,id=NAME from "
                f"/run/secrets/NAME; they are not build args): {names}"
            )
        platforms = workflow.platforms
        if len(platforms) == 1:
            image_id = self.build_platform(ctx, client, options, closer, finished, "")
            return {"image_id": image_id, "local_tag": tag}
        # Multi-arch: one image per platform, each its own build with its own local tag; the
        # Push stage joins them into one manifest list (integrations/podman/manifests.py).
        if not podman:
            raise StageError("a multi-arch build needs podman's engine (its manifest list API)")
        images, tags = {}, []
        try:
            for platform in platforms:
                local = f"{tag}-{arch_of(platform)}"
                tags.append(local)
                finished.clear()
                one = {**options, "tag": local, "platform": platform}
                images[platform] = self.build_platform(ctx, client, one, closer, finished, platform)
        except BaseException:
            for local in tags:  # the stage has no output to clean up after: do it now
                self.remove(client, local)
            raise
        return {
            "image_id": images[platforms[0]],  # what the post-build script runs
            "local_tag": tags[0],
            "local_tags": tags,
            "platform_images": images,
        }

    def build_platform(
        self,
        ctx: Context,
        client: docker.DockerClient,
        options: dict[str, Any],
        closer: StreamCloser,
        finished: threading.Event,
        platform: str,
    ) -> str:
        """Builds `options` (one platform) to its tag; returns the image id. `platform` is
        empty for a single-platform build, else named in the log and the cache tag."""
        workflow, tag = ctx.workflow, options["tag"]
        what = f" for {platform}" if platform else ""
        ctx.log.line(f"Building {workflow.dockerfile}{what} (context {workflow.build_context})")
        started = time.monotonic()
        error, image_id = self.stream(ctx, client, options, closer, finished, tag)
        killed_retries = 0
        while error:
            if self.cache is not None and self.cache.is_cache_error(error):
                # An unreadable or unwritable cache repository must not fail the build.
                ctx.log.line(f"Registry layer cache not used: {error}; building again without it")
                self.cache = None
                self.query = {
                    k: v for k, v in self.query.items() if k not in ("cachefrom", "cacheto")
                }
            elif STORAGE_RACE in error and not options["nocache"]:
                # podman's layer store changed under the build's cache lookup (another build or
                # an image removal at that moment): the build itself is fine, so try once more.
                ctx.log.line(
                    f"The engine lost a cached layer ({error}); building again without cache"
                )
                options = {**options, "nocache": True}
            elif (
                any(words in error for words in ENGINE_KILLED_STEP)
                and killed_retries < ENGINE_KILLED_RETRIES
            ):
                killed_retries += 1
                ctx.log.line(
                    f"The image engine killed a build step itself ({error}: a podman before 4.6 "
                    f"fault when builds run at once); building again, "
                    f"{killed_retries} of {ENGINE_KILLED_RETRIES}"
                )
                self.reap_orphaned_steps()
            else:
                break
            finished.clear()
            error, image_id = self.stream(ctx, client, options, closer, finished, tag)
        if error:
            raise StageError(f"build failed: {error}")
        image_id = image_id or client.api.inspect_image(tag)["Id"]
        ctx.log.line(f"Built {image_id[:19]} as {tag} in {time.monotonic() - started:.1f} s")
        if workflow.cache_enabled:
            keep_layer_cache(client, image_id, workflow, platform)
        else:
            drop_layer_cache(client, workflow, platform)
        return image_id

    def stream(
        self,
        ctx: Context,
        client: docker.DockerClient,
        options: dict[str, Any],
        closer: StreamCloser,
        finished: threading.Event,
        tag: str,
    ) -> tuple[str, str]:
        """Runs the build, streaming its output into the log; returns (error, image id)."""
        error, image_id = "", ""
        ctx.check_cancelled()
        query = dict(self.query)
        # The context tar made here, not by the SDK: its `path` build sends a Dockerfile from
        # outside the context (the labelled copy) as a (name, text) pair in one parameter.
        context, name, secrets = secret_context(
            self.context_dir, self.dockerfile, self.build_secrets
        )
        if self.build_secrets:
            query["secrets"] = secrets
        options = {**options, "fileobj": context, "custom_context": True, "dockerfile": name}
        del options["path"]
        # The SDK has no argument for these podman parameters: requests adds a session's
        # `params` to each of its requests, and this client serves only this build.
        client.api.params = query
        try:
            for chunk in json_messages(client.api.build(**options)):
                if "error" in chunk or "errorDetail" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    error = one_line(chunk.get("error") or detail.get("message") or chunk)
                elif "stream" in chunk:
                    ctx.log.write(chunk["stream"])
                    if self.cache is not None:
                        self.cache.notice(chunk["stream"])
                elif "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
                elif chunk.get("status"):
                    ctx.log.line(chunk["status"])
        except docker.errors.APIError as exc:
            if not ctx.cancelled.is_set():
                raise StageError(f"build failed: {one_line(exc.explanation or exc)}") from exc
        except Exception as exc:  # the stream was cut: by termination, or the engine died
            if not ctx.cancelled.is_set():
                raise StageError(
                    f"image engine connection lost during the build: {one_line(exc)}", system=True
                ) from exc
        finally:
            client.api.params = {}
            if self.cache is not None:
                self.cache.untag(client)
            context.close()
            finished.set()
        if ctx.cancelled.is_set():
            self.remove(client, tag)
            raise Terminated()
        return error, image_id

    def stop(
        self, closer: StreamCloser, token: str, finished: threading.Event, kill_steps: bool
    ) -> None:
        """Ends the build: on podman by killing its step containers (the build then fails and
        ends its stream itself), on Docker Engine by closing the stream, which cancels there."""
        if kill_steps:
            deadline = time.monotonic() + KILL_STEPS_SECONDS
            while not finished.is_set() and time.monotonic() < deadline:
                buildsteps.kill_steps(token)
                finished.wait(0.2)
        ended = finished.is_set()
        closer.close()
        if not kill_steps:
            return
        if not ended:
            # Cut off mid-build (a long COPY, a pull): podman may still start later RUN steps.
            reap_until = time.monotonic() + REAP_SECONDS
            while time.monotonic() < reap_until:
                buildsteps.kill_steps(token)
                time.sleep(1)
        time.sleep(1)  # buildah deletes its killed steps itself; only then look for leftovers
        buildsteps.remove_stopped_steps(token)

    def reap_orphaned_steps(self) -> None:
        """The killed subprocess leaves its step's process running, orphaned, and its runc
        container behind: both go before the build starts again."""
        if not self.kill_steps:
            return
        if buildsteps.kill_steps(self.token):
            time.sleep(1)  # as in `stop`: the killed step is gone from runc's list only then
        buildsteps.remove_stopped_steps(self.token)

    def remove(self, client: docker.DockerClient, tag: str) -> None:
        with contextlib.suppress(docker.errors.APIError):  # it may not have got to tagging
            client.api.remove_image(tag)
