"""The Kubernetes deploy target: manifests from the client's models, server-side apply."""
