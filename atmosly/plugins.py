"""One registry per kind of plug-in (stage runners, registry providers, webhook providers,
deploy targets, scanners, secret managers), all built the same way.

Each kind's home module declares a `typing.Protocol` and one `Registry[T]`, then one
`register` line per provider naming where it lives ("package.module" for a module,
"package.module:Name" for a class or object). The import happens on the first `get`, so the
home module never imports its providers (no import cycles, no boto3 loaded to push to a
generic registry) and adding a provider means adding its folder and one line.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownPlugin(KeyError):
    """No plug-in of this kind is registered under that name. A KeyError, as the dict lookups
    it replaces raised."""

    def __init__(self, kind: str, name: str, known: list[str]):
        super().__init__(name)
        self.message = f'unknown {kind} "{name}": choose one of {", ".join(known)}'

    def __str__(self) -> str:
        return self.message


def load(path: str) -> Any:
    """Imports "package.module" (the module) or "package.module:Name" (one of its names)."""
    module, _, name = path.partition(":")
    loaded = import_module(module)
    return getattr(loaded, name) if name else loaded


class Registry(Generic[T]):
    """Names → plug-ins of one kind, e.g. `Registry[RegistryProvider]("registry provider")`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._paths: dict[str, str] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, path: str) -> None:
        """Adds the plug-in at `path` under `name`; a name registered twice is a programming
        error, caught at import time."""
        if name in self._paths:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._paths[name] = path

    def get(self, name: str) -> T:
        """The plug-in named `name`. Raises UnknownPlugin (a KeyError) for any other name."""
        if name not in self._loaded:
            if name not in self._paths:
                raise UnknownPlugin(self.kind, name, self.names())
            self._loaded[name] = load(self._paths[name])
        return self._loaded[name]

    def find(self, name: str) -> T | None:
        """The plug-in named `name`, or None: for names that come from outside (a URL)."""
        return self.get(name) if name in self._paths else None

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._paths)

    def __contains__(self, name: object) -> bool:
        return name in self._paths
