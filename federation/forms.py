"""Portal input: a workload identity trust of a service ID."""

from django import forms

from keys.scopes import ceiling_for, describe


class WorkloadTrustForm(forms.Form):
    issuer = forms.URLField(
        max_length=300,
        assume_scheme="https",
        help_text="The OIDC issuer, e.g. https://token.actions.githubusercontent.com",
    )
    audience = forms.CharField(
        max_length=300, help_text="The aud your CI asks its ID token for, e.g. keyward."
    )
    subject_pattern = forms.CharField(
        max_length=300,
        help_text="The sub to accept; * matches anything, e.g. repo:acme/app:ref:refs/heads/main",
    )
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, service_id, **kwargs):
        super().__init__(*args, **kwargs)
        ceiling = sorted(ceiling_for(service_id.role))
        self.fields["scopes"].choices = [(s, f"{s} — {describe(s)}") for s in ceiling]
