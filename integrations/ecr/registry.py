"""Amazon ECR: a short-lived token from `get_authorization_token`, decoded to `AWS:<token>`."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from integrations.registries import RegistryAuth, RegistryError

if TYPE_CHECKING:
    from workflows.models import RegistryConnection


class Ecr:
    def validate(self, settings: dict) -> dict[str, str]:
        errors = {}
        if not settings.get("aws_region"):
            errors["aws_region"] = "ECR needs the AWS region, e.g. eu-west-1"
        if not settings.get("aws_access_key_id"):
            errors["aws_access_key_id"] = "ECR needs an access key id"
        if not settings.get("password"):
            errors["password"] = "ECR needs the secret access key"
        return errors

    def login(self, connection: RegistryConnection) -> RegistryAuth:
        client = boto3.client(
            "ecr",
            region_name=connection.aws_region,
            aws_access_key_id=connection.aws_access_key_id,
            aws_secret_access_key=connection.password,
            endpoint_url=connection.aws_endpoint_url or None,
        )
        try:
            data = client.get_authorization_token()["authorizationData"][0]
        except (BotoCoreError, ClientError) as exc:
            raise RegistryError(f"ECR refused the credentials: {exc}") from exc
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        # `url` overrides the endpoint ECR names (a pull-through proxy, or a test registry).
        host = connection.url or urlsplit(data["proxyEndpoint"]).netloc
        return RegistryAuth(host, username, password)
