"""Deploy targets: one folder each under integrations/, one interface and registry here.

A target puts a DeploySpec (integrations/kubernetes/manifests.py) into one environment and
waits until it is healthy, or puts an earlier one back. It raises its own ProviderError
subclass when the target refuses, `RolloutFailed` when the release was applied but did not
become healthy (a case for automatic rollback), and `Cancelled` when `cancelled` is set while
it waits. Adding a target: its folder, one `targets.register` line, one TargetKind choice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from atmosly.plugins import Registry
from integrations.errors import ProviderError

if TYPE_CHECKING:
    from integrations.kubernetes.manifests import DeploySpec
    from workflows.models import Environment, Workflow


class RolloutFailed(ProviderError):
    """Applied, but the new release did not become healthy: a case for automatic rollback."""


class DeployTarget(Protocol):
    kind: str  # recorded on each release: "kubernetes", "local"

    def __init__(
        self,
        environment: Any,
        workflow: Any,
        log: Callable[[str], None],
        cancelled: threading.Event,
    ) -> None: ...

    def describe(self) -> str:
        """One line for the log: where the environment lives."""
        ...

    def architectures(self) -> set[str]:
        """The CPU architectures it runs (empty: unknown, not checked)."""
        ...

    def object_name(self, workflow: Any, environment: Any) -> str: ...

    def prepare(
        self, spec: DeploySpec, current: Any, others: Callable[[], Iterable[Any]]
    ) -> DeploySpec:
        """The spec adjusted for this target (a free host port, ...), before any change.
        `current` is the environment's release now (or None); `others()` the latest release
        of every other workflow and environment on a target of this kind."""
        ...

    def deploy(self, spec: DeploySpec) -> dict[str, Any]:
        """Applies `spec` and waits until it is healthy; returns details kept on the release."""
        ...

    def restore(self, spec: DeploySpec | None, name: str) -> None:
        """Puts `spec` back (an earlier release), or removes `name` when there is none."""
        ...


class Target:
    """What every target keeps from the constructor DeployTarget asks for; `open` connects."""

    kind: str

    def __init__(
        self,
        environment: Environment,
        workflow: Workflow,
        log: Callable[[str], None],
        cancelled: threading.Event,
    ) -> None:
        self.environment = environment
        self.workflow = workflow
        self.log = log
        self.cancelled = cancelled
        self.address = self.open()

    def open(self) -> str:
        """Connects to the environment's engine or cluster; returns its address for the log.
        Raises the target's ProviderError when it cannot be used."""
        raise NotImplementedError


# Keys are workflows.models.TargetKind values.
targets: Registry[type[DeployTarget]] = Registry("deploy target")
targets.register("kubernetes", "integrations.kubernetes.target:KubernetesTarget")
targets.register("local", "integrations.local_engine.target:LocalTarget")
