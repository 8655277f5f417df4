"""Security scanning through the engine on real parts: detect-secrets and Trivy over a real
checkout, SonarQube against a double of its Web API, and the report download.

The AWS credentials below have the shape of AWS's documented examples but are made up, and are
assembled at run time so this file itself holds no scannable key. AWS's literal example key
(`...EXAMPLE`) is not used: Trivy allow-lists it on purpose and would report nothing."""

from __future__ import annotations

from tests.realparts import BASE_IMAGE

FAKE_KEY_ID = "AKIA" + "IOSFODNN7" + "WFTEST2"
FAKE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYWFTESTKEY1"
FAKE_VALUES = (FAKE_KEY_ID, FAKE_SECRET_KEY)


def leaky_files() -> dict[str, str]:
    """An app with AWS credentials in its settings and a Dockerfile that runs as root."""
    return {
        "Dockerfile": (
            f'FROM {BASE_IMAGE}\nCOPY . /app\nCMD ["sh", "-c", "exec httpd -f -p 8080 -h /app"]\n'
        ),
        "index.html": "<h1>leaky</h1>\n",
        "app/settings.py": (
            f'aws_access_key_id = "{FAKE_KEY_ID}"\naws_secret_access_key = "{FAKE_SECRET_KEY}"\n'
        ),
    }


def clean_files() -> dict[str, str]:
    """The same app without credentials, its image running as an unprivileged user."""
    return {
        "Dockerfile": (
            f"FROM {BASE_IMAGE}\n"
            "COPY index.html /app/index.html\n"
            "USER 65534\n"
            'CMD ["sh", "-c", "exec httpd -f -p 8080 -h /app"]\n'
        ),
        "index.html": "<h1>clean</h1>\n",
        "app/settings.py": 'import os\n\naws_access_key_id = os.environ["AWS_ACCESS_KEY_ID"]\n',
    }
