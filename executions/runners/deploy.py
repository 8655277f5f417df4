"""Deploy stage: puts the run's image into one environment on its target (Kubernetes, or the
local engine), one deploy per service and environment at a time, and records the release.

A rollout that does not become healthy rolls back to the environment's previous release when
its deploy step says so; a terminate stops the wait and puts the previous release back, so the
environment is always left on a release the log and the error name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from executions.models import Release
from executions.releases import (
    check_not_older,
    current_release,
    deploy_lock,
    do_record_release,
    public_manifest,
)
from executions.runners.base import Context, Runner, StageError, Terminated
from integrations.errors import Cancelled, ProviderError
from integrations.kubernetes.manifests import DeploySpec
from integrations.kubernetes.spec import deploy_spec, pull_registry
from integrations.podman.distribution import split_reference
from integrations.podman.engine import registry_architectures
from integrations.registries import RegistryError
from integrations.targets import DeployTarget, RolloutFailed, targets
from workflows.models import Environment, WorkflowEnvironment

if TYPE_CHECKING:
    pass


def target_for(environment: Environment, ctx: Context) -> DeployTarget:
    target = targets.get(environment.target)
    return target(environment, ctx.workflow, ctx.log.line, ctx.cancelled)


class Deploy(Runner):
    kind = "deploy"

    def run(self, ctx: Context) -> dict[str, Any]:
        self.ctx = ctx
        env_id = ctx.stage.environment_id
        env = Environment.objects.filter(pk=env_id).first() if env_id is not None else None
        if env is None or not env.is_active:
            name = env.name if env else "(deleted)"
            raise StageError(f"environment {name} is inactive: activate it to deploy there")
        self.env = env
        image = ctx.outputs.get("image") or ctx.execution.image
        digest = ctx.outputs.get("image_digest") or ctx.execution.image_digest
        commit = ctx.outputs.get("commit_sha") or ctx.execution.commit_sha
        if not image:
            raise StageError("there is no image to deploy", system=True)
        self.target = target_for(env, ctx)
        ctx.log.line(f"Deploying {image} ({digest or 'no digest'}) to {env.name}")
        ctx.log.line(f"Target: {self.target.describe()}")
        ctx.on_cancel(lambda: ctx.log.line("Termination requested: the deploy stops waiting"))
        self.current = current_release(ctx.workflow, env)
        try:
            with deploy_lock(
                ctx.stage, ctx.workflow.service, env, ctx.cancelled, ctx.log.line
            ) as waited:
                return {**self.deploy(image, digest, commit), "waited_for_lock_seconds": waited}
        except (Terminated, Cancelled) as exc:
            if str(exc):
                raise
            raise Terminated(self.untouched()) from exc

    def spec(self, image: str, digest: str, commit: str, execution_id: int) -> DeploySpec:
        ctx = self.ctx
        spec = deploy_spec(
            workflow=ctx.workflow,
            environment=self.env,
            name=self.target.object_name(ctx.workflow, self.env),
            image=image,
            digest=digest,
            commit=commit,
            execution_id=execution_id,
            runtime_env=ctx.runtime_env,
            secret_keys=set(ctx.secrets),
        )
        return self.target.prepare(spec, self.current, self.other_releases)

    def deploy(self, image: str, digest: str, commit: str) -> dict[str, Any]:
        ctx, env = self.ctx, self.env
        self.current = current_release(ctx.workflow, env)  # it may have changed while waiting
        check_not_older(ctx.execution, env, self.current, commit, digest)
        self.check_architecture(image, digest)
        spec = self.spec(image, digest, commit, ctx.execution.pk)
        try:
            details = self.target.deploy(spec)
        except RolloutFailed as exc:
            self.roll_back(exc)
        except (Terminated, Cancelled) as exc:
            raise Terminated(self.restore(spec)) from exc
        rollback_of = Release.objects.filter(pk=ctx.stage.output.get("rollback_of")).first()
        # What was applied, secret values hidden: the next approval card diffs against it.
        details = {**details, "manifest": public_manifest(spec)}
        release = self.record(image, digest, commit, details, rollback_of)
        ctx.log.line(f"{env.name} runs release #{release.pk} ({release.version})")
        if details.get("url"):
            ctx.log.line(f"The app answers at {details['url']}")
        return {"release_id": release.pk, "url": details.get("url", "")}

    def check_architecture(self, image: str, digest: str) -> None:
        """Refuses an image built for none of the architectures the target runs: it would only
        fail there with "exec format error". The image's architectures come from this run's
        push when it built the image, else from the registry. What cannot be read (the
        target's nodes hidden by RBAC, the image not in the registry yet, the registry
        unreachable) is logged and not checked: the rollout then reports the real problem."""
        ctx, env = self.ctx, self.env
        target_archs = self.target.architectures()
        if not target_archs:
            return
        built = ctx.outputs.get("image_architectures")
        if built:
            image_archs = set(built)
        else:
            host, repository, _ = split_reference(image)
            ref = f"{host}/{repository}@{digest}" if digest else image
            try:
                found = registry_architectures(ref, pull_registry(ctx.workflow))
            except (RegistryError, requests.RequestException) as exc:
                ctx.log.line(f"Architecture not checked: the registry did not say ({exc})")
                return
            if not found:
                ctx.log.line(f"Architecture not checked: {ref} is not in its registry (yet)")
                return
            image_archs = set(found)
        if not image_archs & target_archs:
            raise StageError(
                f"image {image} is built for {', '.join(sorted(image_archs))}, but {env.name} "
                f"runs {', '.join(sorted(target_archs))} ({self.target.describe()}): set the "
                "workflow's build platform to include "
                + " or ".join(f"linux/{a}" for a in sorted(target_archs))
            )
        missing = target_archs - image_archs
        ctx.log.line(
            f"Image architectures {', '.join(sorted(image_archs))}; {env.name} runs "
            f"{', '.join(sorted(target_archs))}"
            + (f" (no image for its {', '.join(sorted(missing))} nodes)" if missing else "")
        )

    def other_releases(self) -> list[Release]:
        """The latest release of every other workflow and environment on this kind of
        target (what they run now: the local target keeps clear of their host ports)."""
        latest: dict[tuple[int, int], Release] = {}
        releases = Release.objects.filter(target=self.target.kind).order_by("created_at", "id")
        for release in releases:
            latest[(release.workflow_id, release.environment_id)] = release
        latest.pop((self.ctx.workflow.pk, self.env.pk), None)
        return list(latest.values())

    def record(
        self,
        image: str,
        digest: str,
        commit: str,
        details: dict[str, Any],
        rollback_of: Release | None = None,
    ) -> Release:
        return do_record_release(
            stage=self.ctx.stage,
            environment=self.env,
            workflow=self.ctx.workflow,
            image=image,
            digest=digest,
            commit=commit,
            target=self.target.kind,
            details=details,
            rollback_of=rollback_of,
        )

    def spec_of(self, release: Release) -> DeploySpec:
        return self.spec(
            release.image, release.image_digest, release.commit_sha, release.execution_id
        )

    def roll_back(self, error: RolloutFailed) -> None:
        """After a failed rollout: back to the previous release if the step says so. Raises."""
        ctx, env, previous = self.ctx, self.env, self.current
        step_id = ctx.stage.workflow_environment_id
        step = (
            WorkflowEnvironment.objects.filter(pk=step_id).first() if step_id is not None else None
        )
        if previous is None:
            raise StageError(f"{error.message}; there is no earlier release to roll back to")
        if step is None or not step.auto_rollback:
            raise StageError(f"{error.message}; automatic rollback is off for {env.name}")
        ctx.log.line(f"ERROR: {error.message}")
        back = f"release #{previous.pk} ({previous.version})"
        ctx.log.line(f"Rolling back {env.name} to {back}")
        try:
            details = self.target.deploy(self.spec_of(previous))
        except (StageError, ProviderError) as again:
            raise StageError(
                f"{error.message}; the rollback failed too: {again.message}"
            ) from again
        image, digest, commit = previous.image, previous.image_digest, previous.commit_sha
        release = self.record(image, digest, commit, details, previous)
        raise StageError(f"{error.message}; rolled back to {back}, now release #{release.pk}")

    def restore(self, spec: DeploySpec) -> str:
        """Terminated mid-deploy: the previous release goes back (or, with none, the new one
        goes away), so the environment is on a known release. Returns which."""
        previous, env = self.current, self.env
        try:
            self.target.restore(self.spec_of(previous) if previous else None, spec.name)
            where = (
                f"{env.name} is back on release #{previous.pk} ({previous.version})"
                if previous
                else f"{env.name} had no earlier release: the new one was removed"
            )
        except (StageError, ProviderError) as exc:
            where = f"{env.name} could not be put back: {exc.message}"
        self.ctx.log.line(f"Terminated: {where}")
        return where

    def untouched(self) -> str:
        on = f"release #{self.current.pk} ({self.current.version})" if self.current else "none"
        self.ctx.log.line(f"Terminated: nothing was deployed; {self.env.name} stays on {on}")
        return f"nothing was deployed; {self.env.name} stays on {on}"
