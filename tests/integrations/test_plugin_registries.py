"""Plug-in registries: every choice a user can pick has its plug-in, each plug-in has what its
Protocol asks for, and an unknown name is refused with the names there are."""

from __future__ import annotations

import inspect

import pytest

from atmosly.plugins import Registry, UnknownPlugin
from executions.models import StageKind
from executions.runners import StageRunner, runner_for, runners
from integrations.models import Provider
from integrations.registries import RegistryProvider, get_provider, providers
from integrations.scanners import Scanner, scanners
from integrations.secret_managers import SecretManager as SecretManagerProtocol
from integrations.secret_managers import secret_managers
from integrations.targets import DeployTarget, targets
from integrations.webhooks.providers import WebhookProvider, webhook_providers
from workflows.models import RegistryProvider as RegistryChoice
from workflows.models import SecretManager, TargetKind, Workflow

KINDS = [
    (runners, StageKind.values, StageRunner),
    (providers, RegistryChoice.values, RegistryProvider),
    (webhook_providers, Provider.values, WebhookProvider),
    (targets, TargetKind.values, DeployTarget),
    (secret_managers, [v for v in SecretManager.values if v], SecretManagerProtocol),
]


def members(protocol: type) -> set[str]:
    """The names a Protocol declares: its methods and annotated attributes."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if inspect.isfunction(v) and n != "__init__"}
    return names


@pytest.mark.parametrize(("registry", "choices", "protocol"), KINDS, ids=lambda k: str(k)[:20])
def test_every_choice_has_a_plugin_with_the_protocols_members(registry, choices, protocol):
    assert sorted(registry.names()) == sorted(choices)
    for name in registry.names():
        plugin = registry.get(name)
        missing = {m for m in members(protocol) if not hasattr(plugin, m)}
        assert not missing, f"{registry.kind} {name} lacks {missing}"


def test_every_scanner_has_its_workflow_switch_and_the_protocols_members():
    fields = {f.name for f in Workflow._meta.get_fields()}
    for name in scanners.names():
        assert f"scan_{name}" in fields
        plugin = scanners.get(name)
        assert not {m for m in members(Scanner) if not hasattr(plugin, m)}


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(KeyError) as error:
        runner_for("compile")
    assert isinstance(error.value, UnknownPlugin)
    assert str(error.value) == (
        'unknown stage kind "compile": choose one of source, script, scan, build, push, deploy'
    )
    with pytest.raises(UnknownPlugin, match='unknown registry provider "quay"'):
        get_provider("quay")
    assert webhook_providers.find("gitea") is None
    assert webhook_providers.find("github") is webhook_providers.get("github")


def test_a_name_registered_twice_is_refused():
    registry: Registry[object] = Registry("example")
    registry.register("one", "json:dumps")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("one", "json:loads")
    assert registry.get("one").__name__ == "dumps"
    assert "one" in registry and "two" not in registry
