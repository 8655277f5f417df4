"""The Kubernetes builder's pod and its short-lived Secret, built from the official client's
models (kubernetes.client.V1Pod ...) and handed to the API as plain dicts.

The pod clones the commit in an init container (git with an askpass helper reading the
credentials from the Secret, as the Source stage does locally), then builds rootless with
Buildah or BuildKit and pushes straight to the registry with the Secret's docker config. The
build settings map to the pod: the platform to a `kubernetes.io/arch` node selector (a
multi-arch build is not pinned: the builder emulates the other architecture), spot instances to
a preferred node affinity for the configured spot labels plus tolerations of the same
key=value taints, the volume size to a generic ephemeral volume mounted where the builder keeps
its layers, caching off to `--no-cache` and no cache export.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from kubernetes import client

from integrations.git.config import ASKPASS

WORKSPACE = "/workspace"
CREDENTIALS = "/credentials"
DIGEST_MARKER = "workflows-digest: "
# Where each builder keeps its layers, for a non-root user (uid 1000 in both official images).
LAYERS = {
    "buildah": "/home/build/.local/share/containers",
    "buildkit": "/home/user/.local/share/buildkit",
}
DEFAULT_IMAGES = {
    "buildah": "quay.io/buildah/stable:v1.38",
    "buildkit": "docker.io/moby/buildkit:v0.18.2-rootless",
}
CLONE = """set -eu
git clone --quiet --no-checkout "$WORKFLOWS_REPO_URL" /workspace/src
git -C /workspace/src checkout --quiet "$WORKFLOWS_COMMIT"
echo "Cloned $WORKFLOWS_REPO_PUBLIC_URL at $WORKFLOWS_COMMIT"
"""
BUILDAH = """set -eu
cd /workspace/src
set -- --storage-driver=vfs build --isolation=chroot --platform "$WORKFLOWS_PLATFORMS" \\
  --tls-verify="$WORKFLOWS_TLS_VERIFY" -f "$WORKFLOWS_DOCKERFILE"
if [ "$WORKFLOWS_CACHE" = on ]; then set -- "$@" --layers; else set -- "$@" --no-cache; fi
for arg in $WORKFLOWS_BUILD_ARGS; do set -- "$@" --build-arg "$arg"; done
case "$WORKFLOWS_PLATFORMS" in
  *,*) set -- "$@" --manifest workflows-build; push="manifest push --all" ;;
  *)   set -- "$@" -t workflows-build; push="push" ;;
esac
if [ -n "$WORKFLOWS_CACHE_REPO" ]; then
  # A cache repository the registry refuses must not fail the build: once more without it.
  { buildah "$@" --cache-from "$WORKFLOWS_CACHE_REPO" --cache-to "$WORKFLOWS_CACHE_REPO" \\
      "$WORKFLOWS_CONTEXT" && echo 0 >/tmp/status || echo $? >/tmp/status; } 2>&1 \\
    | tee /tmp/build.log
  status=$(cat /tmp/status)
  if [ "$status" != 0 ]; then
    grep -qE "failed (pushing|pulling) cache" /tmp/build.log || exit "$status"
    echo "Registry layer cache not used: $WORKFLOWS_CACHE_REPO refused; building again without it"
    buildah --storage-driver=vfs manifest rm workflows-build >/dev/null 2>&1 || true
    buildah "$@" "$WORKFLOWS_CONTEXT"
  fi
else
  buildah "$@" "$WORKFLOWS_CONTEXT"
fi
for destination in $WORKFLOWS_DESTINATIONS; do
  buildah --storage-driver=vfs $push --tls-verify="$WORKFLOWS_TLS_VERIFY" \\
    --digestfile /tmp/digest workflows-build "docker://$destination"
  echo "Pushed $destination"
done
echo "workflows-digest: $(cat /tmp/digest)"
"""
BUILDKIT = """set -eu
cd /workspace/src
insecure=true; [ "$WORKFLOWS_TLS_VERIFY" = true ] && insecure=false
set -- build --frontend dockerfile.v0 --local "context=$WORKFLOWS_CONTEXT" \
  --local "dockerfile=$(dirname "$WORKFLOWS_DOCKERFILE")" \
  --opt "filename=$(basename "$WORKFLOWS_DOCKERFILE")" --opt "platform=$WORKFLOWS_PLATFORMS" \
  --output "type=image,\\"name=$(echo $WORKFLOWS_DESTINATIONS | tr ' ' ,)\\",push=true,registry.insecure=$insecure" \
  --metadata-file /tmp/metadata.json
if [ "$WORKFLOWS_CACHE" != on ]; then set -- "$@" --no-cache; fi
if [ -n "$WORKFLOWS_CACHE_REPO" ]; then
  set -- "$@" --import-cache "type=registry,ref=$WORKFLOWS_CACHE_REPO" \
    --export-cache "type=registry,ref=$WORKFLOWS_CACHE_REPO,mode=max"
fi
# Each value from the Secret's file (printenv is not in every busybox); an assignment, so a
# file that cannot be read stops the script (set -e) instead of passing an empty value.
for arg in $WORKFLOWS_BUILD_ARGS; do
  value=$(cat "/credentials/arg-$arg")
  set -- "$@" --opt "build-arg:$arg=$value"
done
buildctl-daemonless.sh "$@"
echo "workflows-digest: $(sed -n 's/.*"containerimage.digest": *"\\([^"]*\\)".*/\\1/p' /tmp/metadata.json)"
"""


@dataclass
class BuildPod:
    """What one Kubernetes build needs; `pod()` and `secret()` make its objects."""

    name: str
    namespace: str
    labels: dict[str, str]
    repo_url: str
    public_repo_url: str
    commit: str
    context: str
    dockerfile: str
    destinations: list[str]
    platforms: list[str]
    cache: bool
    spot: bool
    volume_size_gb: int
    tool: str = "buildah"
    image: str = ""
    git_image: str = ""
    spot_labels: list[str] = field(default_factory=list)
    storage_class: str = ""
    cache_repository: str = ""
    tls_verify: bool = True  # False for a plain-HTTP registry (the connection's `insecure`)
    timeout_seconds: int = 3600
    # Secret material: never in the pod spec, only in the Secret it reads.
    git_username: str = ""
    git_password: str = ""
    registry_host: str = ""
    registry_auth: dict[str, str] | None = None
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def secret_name(self) -> str:
        return f"{self.name}-credentials"

    def secret(self) -> dict:
        """The short-lived Secret: git credentials, askpass helper, docker config, build args."""
        auths = {}
        if self.registry_auth:
            # The "auth" field (base64 of user:password): the one form every reader of a docker
            # config takes; containers/image (Buildah) ignores "username"/"password".
            pair = f"{self.registry_auth['username']}:{self.registry_auth['password']}"
            auths[self.registry_host] = {"auth": base64.b64encode(pair.encode()).decode()}
        data = {
            "askpass.sh": ASKPASS,
            "git-username": self.git_username,
            "git-password": self.git_password,
            "config.json": json.dumps({"auths": auths}),
            **{f"arg-{k}": v for k, v in self.build_args.items()},
        }
        secret = client.V1Secret(
            api_version="v1",
            kind="Secret",
            metadata=client.V1ObjectMeta(
                name=self.secret_name, namespace=self.namespace, labels=self.labels
            ),
            type="Opaque",
            string_data=data,
        )
        return client.ApiClient().sanitize_for_serialization(secret)

    def secret_env(self, name: str, key: str) -> client.V1EnvVar:
        ref = client.V1SecretKeySelector(name=self.secret_name, key=key)
        return client.V1EnvVar(name=name, value_from=client.V1EnvVarSource(secret_key_ref=ref))

    def plain_env(self, **values: str) -> list[client.V1EnvVar]:
        return [client.V1EnvVar(name=k, value=v) for k, v in values.items()]

    def pod(self) -> dict:
        tool = self.tool if self.tool in LAYERS else "buildah"
        workspace = client.V1VolumeMount(name="workspace", mount_path=WORKSPACE)
        credentials = client.V1VolumeMount(
            name="credentials", mount_path=CREDENTIALS, read_only=True
        )
        layers = client.V1VolumeMount(name="layers", mount_path=LAYERS[tool])
        clone = client.V1Container(
            name="clone",
            image=self.git_image,
            command=["sh", "-c", CLONE],
            env=[
                *self.plain_env(
                    WORKFLOWS_REPO_URL=self.repo_url,
                    WORKFLOWS_REPO_PUBLIC_URL=self.public_repo_url,
                    WORKFLOWS_COMMIT=self.commit,
                    GIT_ASKPASS=f"{CREDENTIALS}/askpass.sh",
                    GIT_TERMINAL_PROMPT="0",
                    GIT_CONFIG_NOSYSTEM="1",
                    HOME="/tmp",
                ),
                self.secret_env("WORKFLOWS_GIT_USERNAME", "git-username"),
                self.secret_env("WORKFLOWS_GIT_PASSWORD", "git-password"),
            ],
            volume_mounts=[workspace, credentials],
            security_context=self.security(),
        )
        build_env = self.plain_env(
            WORKFLOWS_PLATFORMS=",".join(self.platforms),
            WORKFLOWS_DOCKERFILE=self.dockerfile,
            WORKFLOWS_CONTEXT=self.context,
            WORKFLOWS_DESTINATIONS=" ".join(self.destinations),
            WORKFLOWS_CACHE="on" if self.cache else "off",
            WORKFLOWS_TLS_VERIFY="true" if self.tls_verify else "false",
            WORKFLOWS_CACHE_REPO=self.cache_repository if self.cache else "",
            WORKFLOWS_BUILD_ARGS=" ".join(sorted(self.build_args)),
            REGISTRY_AUTH_FILE=f"{CREDENTIALS}/config.json",  # Buildah
            DOCKER_CONFIG=CREDENTIALS,  # BuildKit reads $DOCKER_CONFIG/config.json
            BUILDAH_ISOLATION="chroot",
            BUILDKITD_FLAGS="--oci-worker-no-process-sandbox",
        )
        build_env += [self.secret_env(k, f"arg-{k}") for k in sorted(self.build_args)]
        build = client.V1Container(
            name="build",
            image=self.image or DEFAULT_IMAGES[tool],
            command=["sh", "-c", BUILDAH if tool == "buildah" else BUILDKIT],
            env=build_env,
            volume_mounts=[workspace, credentials, layers],
            security_context=self.security(builder=True),
        )
        pod = client.V1Pod(
            api_version="v1",
            kind="Pod",
            metadata=client.V1ObjectMeta(
                name=self.name, namespace=self.namespace, labels=self.labels
            ),
            spec=client.V1PodSpec(
                restart_policy="Never",
                active_deadline_seconds=self.timeout_seconds,
                automount_service_account_token=False,
                init_containers=[clone],
                containers=[build],
                node_selector=self.node_selector(),
                affinity=self.affinity(),
                tolerations=self.tolerations(),
                security_context=client.V1PodSecurityContext(
                    run_as_user=1000, run_as_group=1000, fs_group=1000, run_as_non_root=True
                ),
                volumes=[
                    client.V1Volume(name="workspace", empty_dir=client.V1EmptyDirVolumeSource()),
                    client.V1Volume(
                        name="credentials",
                        secret=client.V1SecretVolumeSource(
                            secret_name=self.secret_name, default_mode=0o555
                        ),
                    ),
                    client.V1Volume(name="layers", ephemeral=self.layer_volume()),
                ],
            ),
        )
        return client.ApiClient().sanitize_for_serialization(pod)

    @staticmethod
    def security(builder: bool = False) -> client.V1SecurityContext:
        # Rootless builders create user namespaces: the default seccomp and AppArmor profiles
        # forbid that (Buildah's and BuildKit's documented rootless pod settings). The builder
        # maps its subordinate ids with newuidmap/newgidmap, whose file capabilities need
        # SETUID and SETGID in the container's set (a restricted default drops them) and
        # privilege escalation allowed (no_new_privs ignores file capabilities).
        if not builder:
            return client.V1SecurityContext(
                seccomp_profile=client.V1SeccompProfile(type="Unconfined"),
                app_armor_profile=client.V1AppArmorProfile(type="Unconfined"),
            )
        return client.V1SecurityContext(
            seccomp_profile=client.V1SeccompProfile(type="Unconfined"),
            app_armor_profile=client.V1AppArmorProfile(type="Unconfined"),
            allow_privilege_escalation=True,
            capabilities=client.V1Capabilities(add=["SETUID", "SETGID"]),
        )

    def node_selector(self) -> dict[str, str] | None:
        if len(self.platforms) != 1:
            return None
        return {"kubernetes.io/arch": self.platforms[0].rpartition("/")[2]}

    def spot_pairs(self) -> list[tuple[str, str]]:
        parts = (label.partition("=") for label in self.spot_labels)
        return [(key, value) for key, sep, value in parts if sep]

    def affinity(self) -> client.V1Affinity | None:
        if not self.spot or not self.spot_pairs():
            return None
        # Preferred, not required: with no spot capacity left the build still runs.
        terms = [
            client.V1PreferredSchedulingTerm(
                weight=100,
                preference=client.V1NodeSelectorTerm(
                    match_expressions=[
                        client.V1NodeSelectorRequirement(key=key, operator="In", values=[value])
                    ]
                ),
            )
            for key, value in self.spot_pairs()
        ]
        return client.V1Affinity(
            node_affinity=client.V1NodeAffinity(
                preferred_during_scheduling_ignored_during_execution=terms
            )
        )

    def tolerations(self) -> list[client.V1Toleration] | None:
        if not self.spot:
            return None
        return [
            client.V1Toleration(key=key, operator="Equal", value=value, effect="NoSchedule")
            for key, value in self.spot_pairs()
        ] or None

    def layer_volume(self) -> client.V1EphemeralVolumeSource:
        spec = client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            resources=client.V1VolumeResourceRequirements(
                requests={"storage": f"{self.volume_size_gb}Gi"}
            ),
            storage_class_name=self.storage_class or None,
        )
        return client.V1EphemeralVolumeSource(
            volume_claim_template=client.V1PersistentVolumeClaimTemplate(
                metadata=client.V1ObjectMeta(labels=self.labels), spec=spec
            )
        )
