"""A run's CI variables: build args, runtime env and the secret values the logs must mask."""

from __future__ import annotations

from dataclasses import dataclass, field

from executions.runners.base import StageError, provider_errors
from integrations.secret_managers import secret_managers
from workflows.models import VariableScope, Workflow
from workflows.validators import MIN_SECRET_VALUE_LENGTH, short_secret_message


@dataclass
class RunVariables:
    build: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def secret_values(self) -> list[str]:
        return list(self.secrets.values())


def resolve_variables(workflow: Workflow) -> RunVariables:
    """Reads every variable, fetching secret-manager ones now so a missing secret fails the run
    before anything is built."""
    result = RunVariables()
    service = workflow.service
    registry_password = workflow.registry.password if workflow.registry else ""
    for credential in (service.git_token, service.git_ssh_key, registry_password):
        if credential:
            result.secrets[f"_credential_{len(result.secrets)}"] = credential
    for var in workflow.variables.all():
        if var.secret_manager:
            with provider_errors():
                value = secret_managers.get(var.secret_manager).read_secret(var.secret_ref)
        elif var.is_secret:
            value = var.secret_value
        else:
            value = var.value
        if var.is_secret:
            if len(value) < MIN_SECRET_VALUE_LENGTH:
                # Saved before the rule, or fetched from a secret manager just now.
                raise StageError(f"secret variable {var.key}: {short_secret_message(len(value))}")
            result.secrets[var.key] = value
        if var.scope in (VariableScope.BUILD, VariableScope.BOTH):
            result.build[var.key] = value
        if var.scope in (VariableScope.RUNTIME, VariableScope.BOTH):
            result.runtime[var.key] = value
    return result
