"""Creates the demo: a project with environments, a local registry, a service whose git
repository is served by the local git server, and its workflows. Safe to run again."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser

from workflows.document import WorkflowDocumentSerializer
from workflows.models import Environment, Project, RegistryConnection, Service
from workflows.services import DEFAULT_WORKFLOW_NAME, do_create_service, do_save_workflow

DEMO_APP = Path(__file__).resolve().parents[2] / "demo_app"


class Command(BaseCommand):
    help = "Create the demo project, services, environments and workflows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--git-root", default=str(settings.BASE_DIR / ".run" / "git"))
        parser.add_argument("--git-url", default="http://127.0.0.1:8001")
        parser.add_argument("--git-user", default="demo")
        parser.add_argument("--git-password", default=os.environ.get("DEMO_GIT_PASSWORD", ""))
        parser.add_argument("--registry", default="127.0.0.1:5000")

    def handle(self, *args: Any, **options: Any) -> None:
        admin_password = self.ensure_users()
        project, _ = Project.objects.get_or_create(
            name="demo", defaults={"description": "The demo project"}
        )
        project.members.add(*User.objects.all())
        for order, name in enumerate(["dev", "staging", "prod"]):
            Environment.objects.get_or_create(
                project=project, name=name, defaults={"order": order, "namespace": f"demo-{name}"}
            )
        RegistryConnection.objects.get_or_create(
            project=project,
            name="local",
            defaults={"provider": "generic", "url": options["registry"], "insecure": True},
        )
        self.ensure_repo(Path(options["git_root"]) / "demo-web.git")
        service = Service.objects.filter(project=project, name="web").first()
        if service is None:
            service = do_create_service(
                Service(
                    project=project,
                    name="web",
                    repo_url=f"{options['git_url']}/demo-web.git",
                    default_branch="main",
                    git_username=options["git_user"],
                    git_token=options["git_password"],
                )
            )
        self.ensure_workflows(service)
        self.stdout.write(self.style.SUCCESS("Demo data ready: project demo, service web."))
        if admin_password:
            self.stdout.write(f"Admin login: admin / {admin_password}")
            (settings.BASE_DIR / ".run").mkdir(exist_ok=True)
            (settings.BASE_DIR / ".run" / "admin-password").write_text(admin_password + "\n")

    def ensure_users(self) -> str:
        if User.objects.filter(username="admin").exists():
            return ""
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@example.org", password)
        approver = User.objects.create_user("approver", "approver@example.org", password)
        approver.groups.add(Group.objects.get(name="Approver"))
        return password

    def ensure_repo(self, bare: Path) -> None:
        if bare.exists():
            return
        bare.parent.mkdir(parents=True, exist_ok=True)
        git = ["git", "-c", "user.name=Demo", "-c", "user.email=demo@example.org"]
        subprocess.run(
            ["git", "init", "--bare", "-b", "main", str(bare)], check=True, capture_output=True
        )
        with tempfile.TemporaryDirectory() as work:
            subprocess.run(["git", "init", "-b", "main", work], check=True, capture_output=True)
            for path in DEMO_APP.iterdir():
                (Path(work) / path.name).write_bytes(path.read_bytes())
            subprocess.run([*git, "-C", work, "add", "."], check=True, capture_output=True)
            subprocess.run(
                [*git, "-C", work, "commit", "-m", "Demo app"], check=True, capture_output=True
            )
            subprocess.run(
                [*git, "-C", work, "push", str(bare), "main"], check=True, capture_output=True
            )

    def ensure_workflows(self, service: Service) -> None:
        documents = {
            DEFAULT_WORKFLOW_NAME: {
                "name": DEFAULT_WORKFLOW_NAME,
                "pipeline_type": "ci",
                "source": {
                    "kind": "git",
                    "trigger": "manual",
                    "branches": [{"pattern": "main", "match": "exact"}],
                },
                "push": {
                    "registry": "local",
                    "repository": "demo/web",
                    "tag_template": "{branch}-{short_sha}",
                },
                "variables": [{"key": "GREETING", "value": "hello", "scope": "build"}],
            },
            "deliver": {
                "name": "deliver",
                "pipeline_type": "app_cd",
                "source": {
                    "kind": "git",
                    "trigger": "automatic",
                    "branches": [
                        {"pattern": "main", "match": "exact"},
                        {"pattern": "release/*", "match": "wildcard"},
                    ],
                },
                "push": {"registry": "local", "repository": "demo/web"},
                "deploy": {
                    "port": 8080,
                    "environments": [
                        {"environment": "dev"},
                        {"environment": "staging", "mode": "manual"},
                        {
                            "environment": "prod",
                            "required_approvals": 1,
                            "approvers": {"users": [], "groups": ["Approver"]},
                        },
                    ],
                },
                "scripts": {"post_build": "echo smoke test && test -f /www/index.html"},
            },
        }
        for name, document in documents.items():
            workflow = service.workflows.filter(name=name).first()
            if workflow is not None and workflow.executions.exists():
                continue  # the user has been using it; leave it alone
            serializer = WorkflowDocumentSerializer(
                data=document, service=service, workflow=workflow
            )
            serializer.is_valid(raise_exception=True)
            do_save_workflow(service, serializer.validated_data, workflow)
