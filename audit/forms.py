from django import forms

from audit.actions import ACTIONS, Outcome


class AuditFilterForm(forms.Form):
    since = forms.DateTimeField(
        label="From", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        label="Until", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    actor = forms.CharField(label="Actor starts with", required=False, max_length=200)
    key = forms.IntegerField(label="Key id", required=False, min_value=1)
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "any")] + sorted((a, a) for a in ACTIONS)
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "any"), *Outcome.CHOICES]
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> dict:
        data = self.cleaned_data
        return {k: data[k] for k in data if data[k] not in (None, "")}
