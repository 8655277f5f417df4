"""Forms of the set-up pages. They only render the fields: the rules (and their messages) are
the API's serializers and service functions, which the views call with the posted data."""

from __future__ import annotations

from django import forms


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
