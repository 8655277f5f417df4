"""The Build stage's layer cache on podman: kept in the engine per workflow, and shared through a
cache repository in the workflow's registry so that an empty engine store still hits it.

Measured on podman 4.3.1 / buildah 1.28 (1 Dec 2026), the compat `POST /build` takes buildah's
`--cache-from` / `--cache-to` as the query parameters `cachefrom` / `cacheto` (a repository,
no tag: buildah tags each cached step by its cache key) and logs in with the request's
`X-Registry-Config` header. A step found there is logged "--> Cache pulled from remote
<repo>:<key>" then "--> Using cache <id>"; each step it runs is pushed ("--> Pushing cache").
A missing cache repository is only a miss; a push the registry refuses fails the build with
"failed pushing cache to ...", so the Build stage then builds again without the registry cache.
Every image pulled from the cache keeps the cache repository's name in the engine; removing that
name with `DELETE /images` would delete the image (and so break the local cache chain), which
is why `untag` uses the libpod route that only drops the name.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker
from docker.auth import AuthConfig

from integrations.podman.engine import connect
from integrations.registries import RegistryAuth, RegistryError, get_provider, image_name

if TYPE_CHECKING:
    from workflows.models import Workflow

# buildah's words for a cache step that reached (or failed to reach) the registry.
PULLED = "--> Cache pulled from remote "
TAGGED = "Successfully tagged "
CACHE_ERRORS = ("failed pushing cache", "failed pulling cache", "cache from source")


def cache_tag(workflow: Workflow, platform: str = "") -> str:
    """The tag that keeps a workflow's newest build; a multi-arch build keeps one per platform.
    Named by the workflow's id and creation time: two installations (or test databases)
    sharing an engine have workflows with the same ids."""
    stamp = hashlib.sha256(workflow.created_at.isoformat().encode()).hexdigest()[:8]
    name = f"localhost/workflows-cache/workflow-{workflow.pk}-{stamp}"
    return f"{name}:{arch_of(platform) or 'latest'}"


def arch_of(platform: str) -> str:
    """The architecture part of a platform: "linux/arm64" gives "arm64"."""
    return platform.rpartition("/")[2]


def cache_repository(host: str, repository: str) -> str:
    """The registry cache of images pushed to `repository` on `host`: a sibling repository
    `<repository>-cache`, not a nested `<repository>/cache`, which Docker Hub refuses."""
    return f"{image_name(host, repository)}-cache"


def keep_layer_cache(
    client: docker.DockerClient, image_id: str, workflow: Workflow, platform: str = ""
) -> None:
    """Tags the newest build of a workflow so its layers outlive the run.

    When a run ends its local tag is removed, and podman then deletes the image together with
    the intermediate images of its RUN and COPY steps: the layer cache. A per-workflow tag on
    the newest build keeps that chain for the next run; the previous build's image is removed
    then, which frees only the layers the new build no longer shares with it.
    """
    tag = cache_tag(workflow, platform)
    previous = ""
    with contextlib.suppress(docker.errors.APIError):
        previous = client.api.inspect_image(tag)["Id"]
    repository, name = tag.rsplit(":", 1)
    client.api.tag(image_id, repository, name, force=True)
    if previous and previous != image_id:
        # Deleting its layers takes podman up to a second: not the run's time, so a thread of
        # its own does it. Still tagged by a run in progress, it stays: that run's clean-up
        # removes it later.
        threading.Thread(target=remove_image, args=(previous,), daemon=True).start()


def remove_image(image_id: str) -> None:
    """Best effort, with a client of its own (a client is not shared between threads). An image
    still tagged (by a run of the same workflow in progress: runs of one workflow go at once)
    stays: removing it by id would untag and delete that run's image before its push."""
    with contextlib.suppress(Exception):
        client = connect(timeout=60)
        if not client.api.inspect_image(image_id).get("RepoTags"):
            client.api.remove_image(image_id)


def drop_layer_cache(client: docker.DockerClient, workflow: Workflow, platform: str = "") -> None:
    """Caching off: the layers an earlier cached build of the workflow kept go now."""
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(cache_tag(workflow, platform))


@dataclass
class RegistryCache:
    """One build's cache repository and what the engine pulled from or tagged with it."""

    repository: str
    auth: RegistryAuth
    names: set[str] = field(default_factory=set)

    @classmethod
    def for_workflow(cls, workflow: Workflow, log: Callable[[str], None]) -> RegistryCache | None:
        """The cache of a workflow with caching on and a registry, logged in as its Push stage
        logs in; None (and a log line) when there is none or the login fails."""
        if not workflow.cache_enabled or workflow.registry is None or not workflow.repository:
            return None
        try:
            auth = get_provider(workflow.registry.provider).login(workflow.registry)
        except RegistryError as exc:
            log(f"Registry layer cache not used: registry login failed ({exc})")
            return None
        return cls(cache_repository(auth.host, workflow.repository), auth)

    def query(self) -> dict[str, str]:
        """The build's query parameters: read and write this repository."""
        return {"cachefrom": self.repository, "cacheto": self.repository}

    def authorize(self, client: docker.DockerClient) -> None:
        """Makes the client's builds send this registry's credentials (X-Registry-Config);
        only these, whatever a docker config file on this machine holds."""
        config = self.auth.auth_config()
        auths = {self.auth.host: config} if config else {}
        # docker-py's loaded credentials (private): `build()` encodes them into the header.
        client.api._auth_configs = AuthConfig({"auths": auths})  # type: ignore[attr-defined]

    def notice(self, text: str) -> None:
        """Remembers the names a build line says the engine gave images of this cache."""
        for line in text.splitlines():
            for marker in (PULLED, TAGGED):
                name = line[len(marker) :].strip()
                if line.startswith(marker) and name.startswith(self.repository + ":"):
                    self.names.add(name)

    def is_cache_error(self, error: str) -> bool:
        return any(words in error for words in CACHE_ERRORS) or self.repository in error

    def untag(self, client: docker.DockerClient) -> None:
        """Drops the cache repository's names from the engine's images, keeping the images
        (they are the local layer cache); best effort."""
        for name in sorted(self.names):
            repository, tag = name.rsplit(":", 1)
            with contextlib.suppress(Exception):
                # podman's libpod route (docker-py's private URL builder and session).
                url = client.api._url("/libpod/images/{0}/untag", name)  # type: ignore[attr-defined]
                client.api._post(url, params={"repo": repository, "tag": tag}, timeout=30)  # type: ignore[attr-defined]
        self.names.clear()
