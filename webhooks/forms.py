"""Portal input for webhook endpoints."""

from django import forms

from webhooks.events import EVENTS


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="https:// only; it must resolve to a public address.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="Keyward sends only the events you choose.",
    )
