"""Custom script stages (pre_build, post_build, post_push, post_deploy): the workflow's shell
script, run with `sh -e` in a container with the checkout mounted at /workspace."""

from __future__ import annotations

import contextlib
import secrets
import threading
from typing import Any

import docker
from django.conf import settings

from executions.runners.base import Context, Runner, StageError, Terminated
from executions.runners.sandbox import script_network
from integrations.podman.engine import connect, container_output, one_line

# These hooks run in the image just built (to test it); the others in a small base image.
IN_BUILT_IMAGE = ("post_build", "post_push")
# How long after the container exited its log stream may take to end by itself.
LOGS_GRACE_SECONDS = 2.0


class Script(Runner):
    kind = "script"

    def run(self, ctx: Context) -> dict[str, Any]:
        hook = ctx.stage.output.get("hook", "")
        text = (ctx.workflow.scripts or {}).get(hook) or ""
        if not text.strip():
            ctx.log.line(f"The {hook} script is empty; nothing to run")
            return {}
        if hook in IN_BUILT_IMAGE:
            image = ctx.outputs.get("image_id", "")
            if not image:
                raise StageError(f"the {hook} script needs the built image, and there is none")
        else:
            image = settings.SCRIPT_IMAGE
        src = ctx.workspace / "src"
        src.mkdir(parents=True, exist_ok=True)
        execution = ctx.execution
        env = {
            **ctx.build_args,
            **ctx.runtime_env,
            "WORKFLOWS_COMMIT_SHA": ctx.outputs.get("commit_sha") or execution.commit_sha,
            # Source may have just learnt what a bare ref named; the outputs hold it.
            "WORKFLOWS_BRANCH": ctx.outputs.get("branch", execution.branch),
            "WORKFLOWS_TAG": ctx.outputs.get("tag", execution.tag),
            "WORKFLOWS_REF_KIND": ctx.outputs.get("ref_kind", execution.ref_kind),
            "WORKFLOWS_IMAGE": ctx.outputs.get("image") or execution.image,
            "WORKFLOWS_EXECUTION_NUMBER": str(execution.number),
        }
        # Named so that leftovers of a crashed worker can be found by prefix; the suffix keeps
        # two installations (or test sessions) sharing one engine from colliding.
        name = f"workflows-exec-{execution.pk}-{hook.replace('_', '-')}-{secrets.token_hex(3)}"
        client = connect()
        try:
            container = client.api.create_container(
                image,
                entrypoint=["/bin/sh", "-e", "-c"],
                command=[text],
                name=name,
                environment=env,
                working_dir="/workspace",
                labels={"io.atmosly.execution": str(execution.pk), "io.atmosly.hook": hook},
                host_config=client.api.create_host_config(
                    binds={str(src.resolve()): {"bind": "/workspace", "mode": "rw"}},
                    # Its own network namespace: never the host's loopback services.
                    network_mode=script_network(),
                ),
            )
        except docker.errors.ImageNotFound as exc:
            raise StageError(f"{hook} script image {image} not found", system=True) from exc
        except docker.errors.APIError as exc:
            raise StageError(
                f"could not create the {hook} script container: {one_line(exc.explanation)}",
                system=True,
            ) from exc
        cid = container["Id"]
        ctx.on_cancel(lambda: self.kill(client, cid))
        try:
            shown = image[:19] if image.startswith("sha256:") else image
            ctx.log.line(f"Running the {hook} script in {shown}")
            ctx.check_cancelled()
            client.api.start(cid)
            if ctx.cancelled.is_set():  # terminate came between the check and the start
                self.kill(client, cid)
            code = self.follow(ctx, client, cid)
        except docker.errors.APIError as exc:
            if ctx.cancelled.is_set():
                raise Terminated() from exc
            raise StageError(f"{hook} script could not run: {one_line(exc.explanation)}") from exc
        finally:
            self.remove(client, cid)
        ctx.check_cancelled()
        if code != 0:
            raise StageError(f"{hook} script exited with code {code}")
        return {}

    def follow(self, ctx: Context, client: docker.DockerClient, cid: str) -> int:
        """Streams the container's output until it exits; returns its exit code.

        podman 4.3 sometimes keeps a `logs --follow` stream open after the container exited
        (measured: a failing script's stream never ended). So a second connection waits for
        the exit, and if the stream is still open a moment later it is closed and the rest of
        the output is read without following."""
        stream = container_output(client, cid, follow=True)
        exit_code: dict[str, int] = {}
        stream_ended, closed = threading.Event(), threading.Event()

        def watch() -> None:
            # Removed or killed (terminate): the stream ends on its own.
            with contextlib.suppress(docker.errors.APIError):
                exit_code["code"] = connect().api.wait(cid, timeout=None).get("StatusCode", -1)
            if not stream_ended.wait(LOGS_GRACE_SECONDS):
                closed.set()
                stream.close()

        watcher = threading.Thread(target=watch, name=f"wait-{cid[:12]}", daemon=True)
        watcher.start()
        written = {"stdout": 0, "stderr": 0}
        try:
            for name, data in stream:
                written[name] = written.get(name, 0) + len(data)
                ctx.log.write(data, name)
        except Exception:
            if not closed.is_set():
                raise
        stream_ended.set()
        if closed.is_set():  # what the stuck stream had not delivered yet, stream by stream
            for name, data in container_output(client, cid, follow=False):
                skip = min(written.get(name, 0), len(data))
                written[name] = written.get(name, 0) - skip
                if data[skip:]:
                    ctx.log.write(data[skip:], name)
        watcher.join()
        return exit_code.get("code", -1)

    def kill(self, client: docker.DockerClient, cid: str) -> None:
        with contextlib.suppress(docker.errors.APIError):  # it may have exited already
            client.api.kill(cid)

    def remove(self, client: docker.DockerClient, cid: str) -> None:
        with contextlib.suppress(docker.errors.APIError):  # gone already, or going
            client.api.remove_container(cid, force=True, v=True)
