"""Portal input for accounts: login, second factor, invitations, members, service IDs."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.template import loader

from accounts import lockout, mfa, roles, services
from accounts.models import ServiceID, User
from common.mail import EmailMultiAlternatives
from common.request import context_of


class LoginForm(forms.Form):
    email = forms.EmailField(
        label="E-mail",
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=mfa.CODE_MAX_LENGTH,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}
        ),
    )


class EnrolForm(forms.Form):
    code = forms.RegexField(
        label="Code from the app",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the 6-digit code your app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "numeric"}
        ),
    )


class KeywardSetPasswordForm(SetPasswordForm):
    """Set a password through a reset link; the service audits it and lifts an account lock."""

    request = None

    def save(self, commit=True):
        services.user_password_set(
            user=self.user,
            password=self.cleaned_data["new_password1"],
            action="auth.password_reset",
            context=context_of(self.request) if self.request is not None else None,
        )
        return self.user


class KeywardPasswordResetForm(PasswordResetForm):
    """Django's reset form, matching e-mail addresses case-insensitively.

    SECURITY: an address with no account costs the request what one with an account costs (a
    token made for a stand-in user, with no row, and an e-mail rendered for it, never sent), and
    no e-mail goes out in the request (``lockout.send_off_request``): the answer's timing does not
    tell whether the address has an account.
    """

    email = forms.EmailField(
        label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def get_users(self, email):
        users = [
            u
            for u in User.objects.filter(email__iexact=email, is_active=True)
            if u.has_usable_password() or not u.last_login
        ]
        return users or [User(email=email)]  # the stand-in: its pk is None

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        stand_in = context["user"].pk is None

        def send():
            subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
            body = loader.render_to_string(email_template_name, context)
            if not stand_in:
                EmailMultiAlternatives(subject, body, from_email, [to_email]).send()

        lockout.send_off_request(send, what="a password reset link")


def role_choices(actor_role: str) -> list[tuple[str, str]]:
    """Return the roles a member with ``actor_role`` may grant, as choices."""
    return [
        (value, label) for value, label in roles.Role.choices if roles.can_assign(actor_role, value)
    ]


def add_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ``ValidationError`` on ``form``: on its field if the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(label="Role", widget=forms.RadioSelect)

    def __init__(self, *args, actor_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        # Each role with what it may do, so that the inviter knows what they grant.
        self.fields["role"].choices = [
            (value, f"{label}: {roles.describe(value)}")
            for value, label in role_choices(actor_role)
        ]
        self.fields["role"].initial = roles.Role.MEMBER


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, actor_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(actor_role)


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            try:
                password_validation.validate_password(
                    p1, User(email=self.email, full_name=data.get("full_name", ""))
                )
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class ServiceIDForm(forms.ModelForm):
    class Meta:
        model = ServiceID
        fields = ["name", "description", "role"]

    def __init__(self, *args, actor_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(actor_role)


class PasskeyNameForm(forms.Form):
    name = forms.CharField(
        label="Name this passkey",
        max_length=mfa.PASSKEY_NAME_MAX_LENGTH,
        help_text="So you can tell your passkeys apart, e.g. “YubiKey 5C” or “MacBook Touch ID”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


class SignInPolicyForm(forms.Form):
    require_passkey = forms.BooleanField(
        label="Require a passkey of every member",
        required=False,
        help_text=(
            "Members without a passkey are asked to add one before they can open this tenant; "
            "a code from an authenticator app alone no longer confirms sensitive actions here."
        ),
    )
