"""Forms of the set-up pages. They only render the fields: the rules (and their messages) are
the API's serializers and service functions, which the views call with the posted data."""

from __future__ import annotations

from django import forms

from atmosly.forms import WriteOnlyTextarea


class RunForm(forms.Form):
    """The Run dialog; the same fields as `POST /api/workflows/<id>/run/`."""

    ref = forms.CharField(
        label="Branch or tag",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    commit = forms.CharField(
        label="Commit (optional)",
        required=False,
        help_text="An exact commit SHA to build instead of the branch's tip.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    image_tag = forms.CharField(
        label="Image tag",
        required=False,
        help_text="The tag of the pre-built image to deploy.",
    )

    def __init__(self, *args, workflow, **kwargs):
        super().__init__(*args, **kwargs)
        if workflow.builds_image:
            del self.fields["image_tag"]
            self.fields["ref"].widget.attrs["list"] = f"refs-{workflow.pk}"
        else:
            del self.fields["ref"], self.fields["commit"]


class ProjectForm(forms.Form):
    name = forms.CharField(help_text="Lower-case letters, digits and '-', e.g. payments.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MemberForm(forms.Form):
    username = forms.CharField(label="User name")
    role = forms.ChoiceField(label="Role", required=False)

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)  # declared above
        role.choices = [("", "— keep their roles —")] + [
            (group.name, group.name) for group in roles
        ]


class ServiceForm(forms.Form):
    """A service from a Git repository, or from a pre-built image (deploy-only)."""

    probe_fields = ("repo_url", "image")

    name = forms.CharField()
    repo_url = forms.CharField(
        label="Git repository URL",
        required=False,
        help_text="https://… or ssh://… (leave empty for a pre-built image)",
    )
    default_branch = forms.CharField(initial="main", required=False)
    git_username = forms.CharField(label="Git user name", required=False)
    git_token = forms.CharField(
        label="Token or password",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never shown again.",
    )
    git_ssh_key = forms.CharField(
        label="SSH private key",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="For ssh:// URLs, instead of a token: an unencrypted private key whose public "
        "key the Git server knows (a deploy key). Write-only: never shown again.",
    )
    image = forms.CharField(
        label="Pre-built image repository",
        required=False,
        help_text="e.g. 127.0.0.1:5000/team/app (instead of a Git repository)",
    )
    image_registry = forms.ChoiceField(label="Registry connection for the image", required=False)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        registry = self.fields["image_registry"]
        assert isinstance(registry, forms.ChoiceField)  # declared above
        registry.choices = [("", "— none (public) —")] + [
            (str(r.pk), r.name) for r in project.registries.all()
        ]


class EnvironmentForm(forms.Form):
    probe_fields = ("kubeconfig",)
    name = forms.CharField()
    target = forms.ChoiceField(
        choices=[("local", "Local engine (podman)"), ("kubernetes", "Kubernetes")]
    )
    namespace = forms.CharField(initial="default", required=False)
    kubeconfig = forms.FileField(
        label="Kubeconfig file",
        required=False,
        help_text="Stored encrypted, write-only. Only for Kubernetes.",
    )


class RegistryForm(forms.Form):
    probe_fields = ("password",)
    name = forms.CharField()
    provider = forms.ChoiceField(
        choices=[
            ("generic", "Generic (Docker Registry v2)"),
            ("dockerhub", "Docker Hub"),
            ("ecr", "Amazon ECR"),
            ("gcr", "Google Container Registry"),
            ("gar", "Google Artifact Registry"),
        ]
    )
    url = forms.CharField(label="Registry host", required=False, help_text="e.g. 127.0.0.1:5000")
    username = forms.CharField(required=False)
    password = forms.CharField(
        label="Password, token or key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="JSON key for GCR/GAR, secret access key for ECR. Write-only.",
    )
    aws_access_key_id = forms.CharField(label="AWS access key id (ECR)", required=False)
    aws_region = forms.CharField(label="AWS region (ECR)", required=False)
    insecure = forms.BooleanField(label="Plain HTTP (local registries only)", required=False)


class VariableForm(forms.Form):
    probe_fields = ("secret_ref",)
    key = forms.CharField(label="Name")
    value = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Secret values are never shown again after saving.",
    )
    secret = forms.BooleanField(label="Secret", required=False)
    scope = forms.ChoiceField(
        choices=[("build", "Build time (build arg)"), ("runtime", "Runtime"), ("both", "Both")]
    )
    secret_manager = forms.ChoiceField(
        label="Read from",
        required=False,
        choices=[
            ("", "Stored here"),
            ("aws", "AWS Secrets Manager"),
            ("gcp", "GCP Secret Manager"),
        ],
    )
    secret_ref = forms.CharField(label="Secret id / resource name", required=False)


class EnvFileForm(forms.Form):
    env_file = forms.FileField(label=".env file")
    secret = forms.BooleanField(label="Import as secrets", required=False)


KEEP_HELP = "Leave blank to keep the stored one ({state}); never shown."


class ServiceEditForm(ServiceForm):
    """The service form for a saved service: its values, never its secrets (a blank token or
    key keeps the stored one; the boxes remove it)."""

    clear_git_token = forms.BooleanField(label="Remove the stored token", required=False)
    clear_git_ssh_key = forms.BooleanField(label="Remove the stored SSH key", required=False)

    def __init__(self, *args, service, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": service.name,
                "repo_url": service.repo_url,
                "default_branch": service.default_branch,
                "git_username": service.git_username,
                "image": service.image,
                "image_registry": str(service.image_registry_id or ""),
            },
        )
        super().__init__(*args, project=service.project, **kwargs)
        self.order_fields(
            [
                "name",
                "repo_url",
                "default_branch",
                "git_username",
                "git_token",
                "clear_git_token",
                "git_ssh_key",
                "clear_git_ssh_key",
            ]
        )
        for field, stored in (
            ("git_token", service.git_token),
            ("git_ssh_key", service.git_ssh_key),
        ):
            state = "one is set" if stored else "none is set"
            self.fields[field].help_text = KEEP_HELP.format(state=state)
            if not stored:
                del self.fields[f"clear_{field}"]


class RegistryEditForm(RegistryForm):
    """The registry form for a saved connection; the password, token or key is write-only."""

    clear_password = forms.BooleanField(label="Remove the stored password", required=False)

    def __init__(self, *args, registry, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                name: getattr(registry, name)
                for name in (
                    "name",
                    "provider",
                    "url",
                    "username",
                    "aws_access_key_id",
                    "aws_region",
                    "insecure",
                )
            },
        )
        super().__init__(*args, **kwargs)
        self.order_fields(["name", "provider", "url", "username", "password", "clear_password"])
        state = "one is set" if registry.password else "none is set"
        self.fields["password"].help_text = KEEP_HELP.format(state=state)
        if not registry.password:
            del self.fields["clear_password"]


class EnvironmentEditForm(EnvironmentForm):
    """The environment form for a saved environment; its kubeconfig is write-only (an empty
    upload keeps the stored one)."""

    def __init__(self, *args, environment, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": environment.name,
                "target": environment.target,
                "namespace": environment.namespace,
            },
        )
        super().__init__(*args, **kwargs)
        state = "one is set" if environment.kubeconfig else "none is set"
        self.fields[
            "kubeconfig"
        ].help_text = (
            f"Stored encrypted, write-only. Choose no file to keep the stored one ({state})."
        )
