"""The local engine deploy target: Kubernetes manifests played on podman (see target.py)."""
