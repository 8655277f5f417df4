from __future__ import annotations

import pytest

from tests.scans.sonarqube_double import SonarQubeDouble

SONAR_TOKEN = "squ_double_token_5f1c9a"


@pytest.fixture
def sonar(settings):
    """The SonarQube double, configured as the product's server; no sonar-scanner CLI."""
    double = SonarQubeDouble(token=SONAR_TOKEN).start()
    settings.SONARQUBE_URL = double.url
    settings.SONARQUBE_TOKEN = SONAR_TOKEN
    settings.SONARQUBE_SCANNER = "/nonexistent/sonar-scanner"
    try:
        yield double
    finally:
        double.stop()
