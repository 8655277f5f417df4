"""SonarQube: submits an analysis with the `sonar-scanner` CLI and checks the quality gate."""
