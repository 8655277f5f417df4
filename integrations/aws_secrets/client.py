"""AWS Secrets Manager: CI variables whose value lives there, read at the start of each run.

Credentials come from the worker's environment (AWS_* variables, instance role); set
AWS_ENDPOINT_URL_SECRETS_MANAGER to point at another endpoint.
"""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from integrations.errors import ProviderError


class AwsSecretsError(ProviderError):
    """AWS Secrets Manager refused, or the secret is not a usable string."""


def read_secret(secret_ref: str) -> str:
    """`secret_ref` is a secret name or ARN, optionally `name#json-key` to pick one field."""
    name, _, json_key = secret_ref.partition("#")
    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=name)
    except NoCredentialsError as exc:
        raise AwsSecretsError(
            "AWS Secrets Manager: the worker has no AWS credentials", system=True
        ) from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise AwsSecretsError(f"AWS Secrets Manager: cannot read {name!r} ({code})") from exc
    except BotoCoreError as exc:
        raise AwsSecretsError(f"AWS Secrets Manager unreachable: {exc}", system=True) from exc
    text = value.get("SecretString")
    if text is None:
        raise AwsSecretsError(f"AWS Secrets Manager: {name!r} is binary, not a string")
    if json_key:
        try:
            text = str(json.loads(text)[json_key])
        except (ValueError, KeyError, TypeError) as exc:
            raise AwsSecretsError(
                f"AWS Secrets Manager: {name!r} has no JSON key {json_key!r}"
            ) from exc
    return text
