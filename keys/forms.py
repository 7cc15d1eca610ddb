"""Portal input for keys and the tenant key policy.

The forms parse what a person typed (an expiry choice into a datetime, a textarea into a list);
the services decide what the tenant's policy allows. A form offers only what the policy allows,
but accepts any well-formed value, so that a refusal is worded once, by the service.
"""

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import KeyApproval, LeakPolicy, Tenant
from common.ratelimit import parse_rate
from keys import scopes as scope_registry
from keys.networks import parse_cidrs
from keys.services import GRACE_CHOICES

CUSTOM = "custom"
NEVER = "never"
# Preset lifetimes in days, as offered on the issue form.
PRESETS = {7: "7 days", 30: "30 days", 60: "60 days", 90: "90 days", 365: "1 year"}
# SECURITY: bounds timedelta arithmetic (a huge day count would overflow datetime: a 500).
MAX_POLICY_DAYS = 3650

CUSTOM_DATE_REQUIRED = "Choose the date on which the key expires."
DEFAULT_ABOVE_MAX = "The default lifetime cannot be longer than the longest lifetime."
EXPIRY_OUT_OF_RANGE = (
    "This lifetime ends past the last date Keyward can store: choose a shorter one."
)
BAD_WARNING_DAYS = "Write whole days between 1 and 365, separated by commas, e.g. 30, 7, 1."
BAD_RATE = "Write a rate as requests/period, e.g. 600/min, 10/s, 5000/hour or 100000/day."


def _lines(value: str) -> str:
    return value.replace("\r\n", "\n")


class _Offered:
    """A choice field that renders ``choices`` but accepts every value in ``accepted`` (any value
    when ``accepted`` is None), so that the service, not the form, refuses what policy forbids."""

    def __init__(self, *args, accepted=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = accepted

    def valid_value(self, value) -> bool:
        if self.accepted is None:
            return True
        return str(value) in self.accepted or super().valid_value(value)


class OfferedChoiceField(_Offered, forms.ChoiceField):
    pass


class OfferedMultipleChoiceField(_Offered, forms.MultipleChoiceField):
    pass


class ServiceErrorsMixin:
    """Show a service's ValidationError or PermissionDenied as form errors."""

    # Service error keys that are named differently on the form.
    service_fields: dict[str, str] = {}

    def add_service_error(self, error: ValidationError | PermissionDenied) -> None:
        if isinstance(error, PermissionDenied):
            self.add_error(None, str(error) or "You may not do this.")
        elif hasattr(error, "error_dict"):
            for key, errors in error.error_dict.items():
                field = self.service_fields.get(key, key)
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, error)


def _scope_label(name: str, description: str) -> str:
    return format_html('<code>{}</code> <span class="muted">{}</span>', name, description)


def _end_of_day_utc(day) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _preset_label(label: str, is_default: bool, now: datetime, days: int) -> str:
    """'30 days (tenant default): until 2027-01-01 14:05 UTC', the expiry the key would get."""
    default = " (tenant default)" if is_default else ""
    try:
        return f"{label}{default}: until {now + timedelta(days=days):%Y-%m-%d %H:%M} UTC"
    except OverflowError:  # a default lifetime set in the admin, past year 9999
        return f"{label}{default}"


class KeyIssueForm(ServiceErrorsMixin, forms.Form):
    """Name, expiry, scopes and allowed networks of a new key; ``expires_at`` once cleaned."""

    service_fields = {"expires_at": "expiry"}

    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the key is for, e.g. “CI deploy” or “laptop scripts”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    expiry = OfferedChoiceField(label="Expires", widget=forms.RadioSelect)
    expiry_date = forms.DateField(
        label="Custom expiry date",
        required=False,
        help_text="With “Custom date”: the key stops working at the end of this day (UTC).",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    scopes = OfferedMultipleChoiceField(
        label="Scopes",
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what this key needs.",
        error_messages={"required": scope_registry.NO_SCOPES},
    )
    allowed_ips = forms.CharField(
        label="Allowed IP addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Optional. One address or CIDR range per line, e.g. 203.0.113.0/24. "
        "Empty: any address the tenant allows.",
    )
    alert_on_new_network = forms.BooleanField(
        label="E-mail an alert when this key is used from a new network",
        required=False,
        help_text="The first request from a network (/24, or /64 for IPv6) it never used before.",
    )

    def __init__(self, *args, tenant: Tenant, owner_role: str, now: datetime | None = None, **kw):
        super().__init__(*args, **kw)
        self.now = (now or timezone.now()).astimezone(UTC)
        self.tenant = tenant
        lifetime = tenant.max_key_lifetime_days
        days = {d: label for d, label in PRESETS.items() if d <= lifetime}
        default = tenant.default_key_lifetime_days
        if default not in days and default <= lifetime:
            days[default] = f"{default} days"
        choices = [
            (str(d), _preset_label(days[d], d == default, self.now, d)) for d in sorted(days)
        ]
        choices.append((CUSTOM, "Custom date"))
        if tenant.allow_non_expiring_keys:
            choices.append((NEVER, "No expiry"))
        expiry = self.fields["expiry"]
        expiry.choices = choices
        # Every preset and "no expiry" parse; whether the policy allows them is the service's call.
        expiry.accepted = {str(d) for d in PRESETS} | {str(default), CUSTOM, NEVER}
        expiry.initial = str(default) if str(default) in dict(choices) else CUSTOM

        # The last day whose end still falls within the longest lifetime (a lifetime set beyond
        # this form's bound elsewhere, e.g. in the admin, must not overflow the date arithmetic).
        horizon = timedelta(days=min(lifetime, 10 * MAX_POLICY_DAYS))
        last = (self.now + horizon).date() - timedelta(days=1)
        first = self.now.date()
        self.fields["expiry_date"].widget.attrs.update(
            min=first.isoformat(), max=max(first, last).isoformat()
        )

        ceiling = scope_registry.ceiling_for(owner_role)
        scopes = self.fields["scopes"]
        scopes.choices = [
            (name, _scope_label(name, description))
            for name, description in scope_registry.all_scopes().items()
            if name in ceiling
        ]
        scopes.accepted = None  # any name: the service refuses unknown or too broad scopes

    def clean_allowed_ips(self) -> list[str]:
        return parse_cidrs(_lines(self.cleaned_data["allowed_ips"]))

    def clean(self):
        data = super().clean()
        choice = data.get("expiry")
        if choice is None:
            return data
        if choice == NEVER:
            data["expires_at"] = None
        elif choice == CUSTOM:
            day = data.get("expiry_date")
            if day is None:
                if "expiry_date" not in self.errors:
                    self.add_error("expiry_date", CUSTOM_DATE_REQUIRED)
            else:
                data["expires_at"] = _end_of_day_utc(day)
        else:
            try:
                data["expires_at"] = self.now + timedelta(days=int(choice))
            except OverflowError:  # a default lifetime set in the admin, past year 9999
                self.add_error("expiry", EXPIRY_OUT_OF_RANGE)
        return data

    def key_arguments(self) -> dict:
        """Return the cleaned input as the keyword arguments of ``key_issue``."""
        fields = ("name", "scopes", "expires_at", "allowed_ips", "alert_on_new_network")
        return {field: self.cleaned_data[field] for field in fields}


class KeyRevokeForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=200,
        required=False,
        help_text="Optional. Recorded in the audit log, e.g. “left the team” or “leaked in a log”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


GRACE_LABELS = {
    "now": "Now: the old key stops working at once",
    "1h": "After 1 hour",
    "24h": "After 24 hours",
    "7d": "After 7 days",
    "first_use": "Until the new key is first used (at most 7 days)",
}


class KeyRotateForm(ServiceErrorsMixin, forms.Form):
    grace = forms.ChoiceField(
        label="The old key keeps working",
        choices=[(k, GRACE_LABELS.get(k, k)) for k in GRACE_CHOICES],
        initial="24h",
        widget=forms.RadioSelect,
    )


class TenantPolicyForm(ServiceErrorsMixin, forms.Form):
    """The tenant's key policy; cleaned_data are the keyword arguments of tenant_policy_update."""

    max_key_lifetime_days = forms.IntegerField(
        label="Longest key lifetime (days)",
        min_value=1,
        max_value=MAX_POLICY_DAYS,
        help_text="No key may be issued or rotated to live longer than this.",
    )
    default_key_lifetime_days = forms.IntegerField(
        label="Default key lifetime (days)",
        min_value=1,
        max_value=MAX_POLICY_DAYS,
        help_text="Preselected on the issue form. At most the longest lifetime.",
    )
    allow_non_expiring_keys = forms.BooleanField(
        label="Allow keys that never expire",
        required=False,
        help_text="Not recommended: a key without expiry lives until someone revokes it.",
    )
    revoke_unused_after_days = forms.IntegerField(
        label="Revoke keys unused for (days)",
        min_value=1,
        max_value=MAX_POLICY_DAYS,
        required=False,
        help_text="Empty: never revoke a key for being unused.",
    )
    leak_policy = forms.ChoiceField(
        label="When a key is found in public",
        choices=LeakPolicy.choices,
        widget=forms.RadioSelect,
    )
    allowed_ips = forms.CharField(
        label="Allowed IP addresses for every key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One address or CIDR range per line. Empty: any address.",
    )
    expiry_warning_days = forms.CharField(
        label="Warn before a key expires (days)",
        max_length=50,
        required=False,
        help_text="E-mail (and webhook key.expiring) this many days before each key expires, "
        "each warning once, e.g. 30, 7, 1. Empty: no expiry warnings.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    key_rate = forms.CharField(
        label="Request rate per key",
        max_length=20,
        required=False,
        help_text="e.g. 600/min. Empty: the installation's default.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    key_approval = forms.ChoiceField(
        label="Keys that wait for approval",
        required=False,
        choices=KeyApproval.choices,
        widget=forms.RadioSelect,
        help_text="A key waiting for approval is shown once, but works only after an owner or "
        "admin other than the person who asked approves it.",
    )
    approval_default_scopes = forms.MultipleChoiceField(
        label="Scopes a key may hold without approval",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="With “Keys with scopes outside the default set”: keys holding only these "
        "scopes need no approval.",
    )
    approval_expire_days = forms.IntegerField(
        label="Deny keys still waiting after (days)",
        required=False,
        min_value=1,
        max_value=MAX_POLICY_DAYS,
        help_text="The maintenance job denies, and revokes, keys nobody decided on by then.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approval_default_scopes"].choices = [
            (name, _scope_label(name, description))
            for name, description in scope_registry.all_scopes().items()
        ]

    @classmethod
    def initial_for(cls, tenant: Tenant) -> dict:
        return {
            "key_approval": tenant.key_approval,
            "approval_default_scopes": list(tenant.approval_default_scopes or []),
            "approval_expire_days": tenant.approval_expire_days,
            "max_key_lifetime_days": tenant.max_key_lifetime_days,
            "default_key_lifetime_days": tenant.default_key_lifetime_days,
            "allow_non_expiring_keys": tenant.allow_non_expiring_keys,
            "revoke_unused_after_days": tenant.revoke_unused_after_days,
            "leak_policy": tenant.leak_policy,
            "allowed_ips": "\n".join(tenant.allowed_ips or []),
            "key_rate": tenant.key_rate,
            "expiry_warning_days": ", ".join(str(d) for d in tenant.expiry_warning_days or []),
        }

    def clean_allowed_ips(self) -> list[str]:
        return parse_cidrs(_lines(self.cleaned_data["allowed_ips"]))

    def clean_expiry_warning_days(self) -> list[int] | None:
        if "expiry_warning_days" not in self.data:
            return None  # a form posted without the field leaves the warnings as they are
        parts = [p for p in self.cleaned_data["expiry_warning_days"].replace(" ", "").split(",")]
        try:
            days = sorted({int(p) for p in parts if p}, reverse=True)
        except ValueError:
            raise ValidationError(BAD_WARNING_DAYS) from None
        if any(not 1 <= d <= 365 for d in days) or len(days) > 5:
            raise ValidationError(BAD_WARNING_DAYS)
        return days

    def clean_key_rate(self) -> str:
        rate = self.cleaned_data["key_rate"].strip().replace(" ", "")
        if rate:
            try:
                parse_rate(rate)
            except ValueError:
                raise ValidationError(BAD_RATE) from None
        return rate

    def clean(self):
        data = super().clean()
        longest, default = data.get("max_key_lifetime_days"), data.get("default_key_lifetime_days")
        if longest is not None and default is not None and default > longest:
            self.add_error("default_key_lifetime_days", DEFAULT_ABOVE_MAX)
        if data.get("expiry_warning_days", []) is None:
            data.pop("expiry_warning_days")
        if not data.get("key_approval"):
            # A form posted without the approval section leaves the approval policy as it is.
            for field in ("key_approval", "approval_default_scopes", "approval_expire_days"):
                data.pop(field, None)
        elif data.get("approval_expire_days") is None:
            data.pop("approval_expire_days", None)
        return data


# --- Edit a key (keys/views/edit.py) ------------------------------------------------------------

NO_EXPIRY_NOT_ALLOWED = "This tenant requires every key to expire: choose a date."


class KeyEditForm(ServiceErrorsMixin, forms.Form):
    """Name, description, networks, alert, scopes, expiry date and rate of an existing key;
    ``values()`` are the arguments of ``key_update`` (its service decides what is allowed)."""

    service_fields = {"expires_at": "expires_on"}

    name = forms.CharField(
        label="Name", max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    description = forms.CharField(
        label="Description",
        max_length=500,
        required=False,
        help_text="Optional. What uses this key and who to ask about it.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    scopes = OfferedMultipleChoiceField(
        label="Scopes",
        widget=forms.CheckboxSelectMultiple,
        help_text="Removing a scope takes effect at once. Adding one needs a fresh verification "
        "with your second factor, and stays within the owner's role.",
        error_messages={"required": scope_registry.NO_SCOPES},
    )
    expires_on = forms.DateField(
        label="Expires at the end of (UTC)",
        required=False,
        help_text="An earlier date takes effect at once; a later one needs a fresh verification "
        "and stays within the tenant's longest lifetime.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    allowed_ips = forms.CharField(
        label="Allowed IP addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One address or CIDR range per line. Empty: any address the tenant allows. "
        "Allowing more addresses needs a fresh verification.",
    )
    alert_on_new_network = forms.BooleanField(
        label="E-mail an alert when this key is used from a new network", required=False
    )
    rate = forms.CharField(
        label="Request rate of this key",
        max_length=20,
        required=False,
        help_text="e.g. 100/min. Empty: the tenant's rate; never higher than it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, key, owner_role: str, **kwargs):
        self.key = key
        kwargs.setdefault(
            "initial",
            {
                "name": key.name,
                "description": key.description,
                "scopes": list(key.scopes),
                "expires_on": key.expires_at.astimezone(UTC).date() if key.expires_at else None,
                "allowed_ips": "\n".join(key.allowed_ips or []),
                "alert_on_new_network": key.alert_on_new_network,
                "rate": key.rate,
            },
        )
        super().__init__(*args, **kwargs)
        ceiling = scope_registry.ceiling_for(owner_role)
        registry = scope_registry.all_scopes()
        offered = [name for name in registry if name in ceiling or name in key.scopes]
        offered += [name for name in key.scopes if name not in offered]
        self.fields["scopes"].choices = [
            (name, _scope_label(name, registry.get(name, "no longer registered")))
            for name in offered
        ]
        self.fields["scopes"].accepted = None  # the service refuses what the ceiling does not
        if key.tenant.allow_non_expiring_keys:
            self.fields["expires_on"].help_text += " Empty: no expiry."

    def clean_allowed_ips(self) -> list[str]:
        return parse_cidrs(_lines(self.cleaned_data["allowed_ips"]))

    def clean(self):
        data = super().clean()
        if "expires_on" in data:
            day = data["expires_on"]
            current = self.key.expires_at
            if day is None:
                if current is not None and not self.key.tenant.allow_non_expiring_keys:
                    self.add_error("expires_on", NO_EXPIRY_NOT_ALLOWED)
                data["expires_at"] = None
            elif current is not None and current.astimezone(UTC).date() == day:
                data["expires_at"] = current  # the same day: unchanged, to the second
            else:
                data["expires_at"] = _end_of_day_utc(day)
        return data

    def values(self) -> dict:
        """Return the cleaned input as ``key_update``'s ``values``."""
        fields = ("name", "description", "scopes", "allowed_ips", "alert_on_new_network", "rate")
        out = {field: self.cleaned_data[field] for field in fields}
        out["expires_at"] = self.cleaned_data["expires_at"]
        return out


class KeyDecisionForm(ServiceErrorsMixin, forms.Form):
    """An approver's decision on a pending key: approve or deny, always with a reason."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    reason = forms.CharField(
        label="Reason",
        max_length=200,
        help_text="Recorded in the audit log and e-mailed to the person who asked.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={
            "required": "Give a reason: it is recorded and sent to the person who asked."
        },
    )


# --- The keys list (keys/views/listing.py) --------------------------------------------------------

SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "name": "Name",
    "expires": "Expires soonest",
    "last_used": "Last used",
}


class KeyListForm(forms.Form):
    """The keys list's query string: search, filters, sort, tab and page. Bad values are form
    errors (400), never a 500."""

    q = forms.CharField(label="Search", max_length=100, required=False)
    status = forms.ChoiceField(label="Status", required=False)
    owner = forms.ChoiceField(label="Owner", required=False)
    scope = forms.ChoiceField(label="Scope", required=False)
    expiring = forms.TypedChoiceField(
        label="Expiring within",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any time")] + [(str(d), f"{d} days") for d in (7, 30, 90)],
    )
    sort = forms.ChoiceField(label="Sort", required=False, choices=list(SORT_LABELS.items()))
    tab = forms.ChoiceField(
        required=False, choices=[("active", "Active"), ("inactive", "Inactive")]
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args, owners: list[tuple[str, str]], **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        from keys.models import KeyStatus

        self.fields["status"].choices = [("", "Any status"), *KeyStatus.choices]
        self.fields["owner"].choices = [("", "Anyone"), *owners]
        self.fields["scope"].choices = [("", "Any scope")] + [
            (name, name) for name in scope_registry.all_scopes()
        ]

    def query(self):
        """Return the cleaned input as a ``selectors.KeyQuery``."""
        from keys.selectors import KeyQuery

        data = self.cleaned_data
        return KeyQuery(
            tab=data.get("tab") or "active",
            q=(data.get("q") or "").strip(),
            status=data.get("status") or "",
            owner=data.get("owner") or "",
            scope=data.get("scope") or "",
            expiring_days=data.get("expiring"),
            sort=data.get("sort") or "newest",
            page=data.get("page") or 1,
        )


class KeyBulkRevokeForm(forms.Form):
    """The keys chosen on the list, and (on the confirmation page) a reason."""

    keys = forms.TypedMultipleChoiceField(coerce=int, choices=[], required=True)
    reason = forms.CharField(label="Reason", max_length=200, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keys"].valid_value = lambda value: str(value).isdigit()
