"""detect-secrets (PyPI `detect-secrets`): secrets committed in the repository."""
