"""Workarounds for podman's Docker-compatible API where it differs from Docker Engine."""
