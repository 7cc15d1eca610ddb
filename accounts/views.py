"""Portal views for people: login, second factor, account security, members, service IDs."""

import base64
import contextlib

import segno
from django.contrib import messages
from django.contrib.auth import authenticate, logout, update_session_auth_hash
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.forms import otp_verification_failed

import audit
from accounts import mfa, roles, selectors, services
from accounts.decorators import mark_sudo, sudo_required, tenant_view
from accounts.forms import (
    AcceptInvitationForm,
    CodeForm,
    EnrolForm,
    InviteForm,
    KeywardPasswordResetForm,
    KeywardSetPasswordForm,
    LoginForm,
    RoleForm,
    ServiceIDForm,
)
from accounts.models import AuthenticatorDevice, User
from audit.services import Actor
from common.http import no_store
from common.request import context_of

INVALID_LOGIN = "E-mail or password is incorrect."
INVALID_CODE = "That code is not valid. Check the time on your phone, or use a backup code."
IP_THROTTLED = "Too many login attempts from your network. Try again in %(seconds)d seconds."
INVITATION_SESSION_KEY = "keyward_invitation"


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _refused(request, user: User, form, devices=()) -> bool:
    """Refuse, unchecked, an attempt while the account or ``devices`` back off (audited); put
    the "try again in …" or lock message on ``form``; return whether it was refused."""
    wait, limit = mfa.attempt_wait(user, devices)
    if wait is None:
        return False
    mfa.attempt_throttled(user=user, wait=wait, limit=limit, context=context_of(request))
    form.add_error("code" if limit == "device" else None, mfa.refusal_message(wait))
    return True


def _code_refused(request, user: User, form, device=None) -> None:
    """Say the code is wrong; django-otp's signal has it counted and audited (accounts.signals)."""
    otp_verification_failed.send(sender=type(form), user=user, request=request, device=device)
    form.add_error("code", INVALID_CODE)


# --- Login and second factor ----------------------------------------------------------------


def _authenticate(request, form) -> tuple[User | None, int]:
    """Return the user the form's credentials authenticate, or None with the form's error; and
    the page's status (429 when refused unchecked).

    The per-address limit and the account's back-off refuse unchecked (audited here);
    ``authenticate()`` signals a wrong password, which accounts.signals audits and counts.
    """
    email = form.cleaned_data["email"]
    context = context_of(request)
    wait = mfa.login_ip_wait(context)
    if wait is not None:
        mfa.attempt_throttled(user=None, email=email, wait=wait, limit="ip", context=context)
        form.add_error(None, IP_THROTTLED % {"seconds": wait})
        return None, 429
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and _refused(request, user, form):
        return None, 429
    authed = authenticate(request, email=email, password=form.cleaned_data["password"])
    if authed is None:
        form.add_error(None, INVALID_LOGIN)
    return authed, 200


def _second_step(request, user: User):
    step = "accounts:mfa_verify" if mfa.has_confirmed_totp(user) else "accounts:mfa_enrol"
    nxt = _safe_next(request, "")
    url = reverse(step)
    return redirect(f"{url}?next={nxt}" if nxt else url)


def login_view(request):
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(_safe_next(request, reverse("accounts:home")))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        user, status = _authenticate(request, form)
        if user is not None:
            auth_login(request, user)  # SECURITY: rotates the session key; audited by a signal
            return _second_step(request, user)
    context = {"form": form, "next": _safe_next(request, "")}
    return render(request, "registration/login.html", context, status=status)


def _qr_data_uri(url: str) -> str:
    return segno.make(url, error="m").svg_data_uri(scale=5, border=2)


def _finish_verification(request, device) -> None:
    """Mark the session verified with ``device``, rotate its key, start sudo mode."""
    otp_login(request, device)
    request.session.cycle_key()  # SECURITY: django-otp's login() does not
    mark_sudo(request)
    mfa.auth_success_reset(request.user)


def mfa_enrol_view(request):
    user = request.user
    if not user.is_authenticated:
        return redirect("accounts:login")
    adding = user.is_verified()
    if not adding and mfa.has_confirmed_totp(user):
        return redirect("accounts:mfa_verify")
    if adding:
        return _enrol_additional(request)
    return _enrol(request, adding=False)


@sudo_required
def _enrol_additional(request):
    return _enrol(request, adding=True)


def _enrol(request, *, adding: bool):
    user = request.user
    device = mfa.totp_pending_device(user)
    form = EnrolForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if _refused(request, user, form, [device]):
            status = 429
        elif mfa.verify_pending(user, device, form.cleaned_data["code"]) is not None:
            mfa.totp_confirm(user=user, device=device, context=context_of(request))
            if adding:
                messages.success(request, "Authenticator added.")
                return redirect("accounts:security")
            _finish_verification(request, device)
            codes = mfa.backup_codes_generate(user=user, context=context_of(request))
            return no_store(
                render(
                    request,
                    "accounts/backup_codes.html",
                    {"codes": codes, "next": _safe_next(request, reverse("accounts:home"))},
                )
            )
        else:
            _code_refused(request, user, form, device)
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "qr": _qr_data_uri(device.config_url),
        "setup_key": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "adding": adding,
        "next": _safe_next(request, ""),
    }
    return no_store(render(request, "accounts/mfa_enrol.html", context, status=status))


def mfa_verify_view(request, *, sudo: bool = False):
    user = request.user
    if not user.is_authenticated:
        return redirect("accounts:login")
    if not sudo and user.is_verified():
        return redirect(_safe_next(request, reverse("accounts:home")))
    if not mfa.has_confirmed_totp(user):
        return redirect("accounts:mfa_enrol")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if _refused(request, user, form, mfa.code_devices(user, code)):
            status = 429
        else:
            device = mfa.verify_any(user, code)
            if device is None:
                _code_refused(request, user, form)
            else:
                _finish_verification(request, device)
                mfa.second_factor_verified(
                    user=user, device=device, sudo=sudo, context=context_of(request)
                )
                if isinstance(device, mfa.BackupCodeDevice):
                    if device.remaining <= 3:
                        messages.warning(
                            request,
                            f"You have {device.remaining} backup codes left. "
                            "Generate new ones on the account security page.",
                        )
                return redirect(_safe_next(request, reverse("accounts:home")))
    return render(
        request,
        "accounts/mfa_verify.html",
        {"form": form, "sudo": sudo, "next": _safe_next(request, "")},
        status=status,
    )


def sudo_view(request):
    return mfa_verify_view(request, sudo=True)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit.record(
            "auth.logged_out", actor=request.user, target=request.user, context=context_of(request)
        )
    logout(request)  # SECURITY: flushes the session and gives a new key
    messages.info(request, "You have logged out.")
    return redirect("accounts:login")


# --- Account security -----------------------------------------------------------------------


def home_view(request):
    memberships = selectors.user_memberships(request.user)
    if len(memberships) == 1:
        return redirect("accounts:tenant_home", slug=memberships[0].tenant.slug)
    return render(request, "accounts/home.html", {"memberships": memberships})


def security_view(request):
    user = request.user
    devices = AuthenticatorDevice.objects.filter(user=user, confirmed=True).order_by("created_at")
    backup = mfa.BackupCodeDevice.objects.filter(user=user).first()
    return render(
        request,
        "accounts/security.html",
        {"devices": devices, "backup_remaining": backup.remaining if backup else 0},
    )


@require_POST
@sudo_required
def backup_codes_regenerate_view(request):
    codes = mfa.backup_codes_generate(user=request.user, context=context_of(request))
    return no_store(
        render(
            request,
            "accounts/backup_codes.html",
            {"codes": codes, "next": reverse("accounts:security"), "regenerated": True},
        )
    )


@require_POST
@sudo_required
def totp_remove_view(request, pk: int):
    devices = AuthenticatorDevice.objects.filter(user=request.user, confirmed=True)
    device = devices.filter(pk=pk).first()
    if device is None:
        raise Http404("No such authenticator.")
    try:
        mfa.totp_remove(user=request.user, device=device, context=context_of(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, "Authenticator removed.")
    return redirect("accounts:security")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:security")

    def form_valid(self, form):
        services.user_password_set(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            action="auth.password_changed",
            context=context_of(self.request),
        )
        update_session_auth_hash(self.request, form.user)  # rotates the session key
        messages.success(self.request, "Your password has been changed.")
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetView(auth_views.PasswordResetView):
    form_class = KeywardPasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        audit.record(
            "auth.password_reset_requested",
            actor=Actor.anonymous(form.cleaned_data["email"]),
            context=context_of(self.request),
        )
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = KeywardSetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.request = self.request
        return form

    def dispatch(self, *args, **kwargs):
        response = super().dispatch(*args, **kwargs)
        add_never_cache_headers(response)
        return response


# --- Tenant pages ---------------------------------------------------------------------------


@tenant_view()
def tenant_home_view(request):
    role = request.membership.role
    return render(
        request,
        "accounts/tenant_home.html",
        {
            "can": {a.name.lower(): roles.may(role, a) for a in roles.Action},
            "membership": request.membership,
        },
    )


def _members_page(request, *, invite_form=None, status=200):
    membership = request.membership
    manage = roles.may(membership.role, roles.Action.MEMBERS_MANAGE)
    members = list(selectors.member_list(membership))
    for m in members:
        m.can_manage = manage and roles.can_assign(membership.role, m.role)
    context = {
        "members": members,
        "invitations": selectors.invitation_list(membership) if manage else [],
        "can_manage": manage,
        "invite_form": invite_form or InviteForm(actor_role=membership.role),
        "role_choices": [
            (v, label) for v, label in roles.Role.choices if roles.can_assign(membership.role, v)
        ],
    }
    return render(request, "accounts/membership_list.html", context, status=status)


@tenant_view(roles.Action.MEMBERS_READ)
def member_list_view(request):
    return _members_page(request)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
def member_invite_view(request):
    form = InviteForm(request.POST, actor_role=request.membership.role)
    if form.is_valid():
        try:
            services.invitation_create(
                actor=request.principal,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                context=context_of(request),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("accounts:members", slug=request.tenant.slug)
    return _members_page(request, invite_form=form, status=400)


def _add_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errs in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, error)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
@sudo_required
def member_role_view(request, pk: int):
    target = selectors.member_get(request.principal, pk)
    form = RoleForm(request.POST, actor_role=request.membership.role)
    if not form.is_valid():
        role = request.POST.get("role")
        if role in roles.Role.values:
            # SECURITY: a real role this member may not grant (an admin making an owner) is a
            # 403, as the service would answer, not a redirect that looks like success.
            raise PermissionDenied(services.NOT_ALLOWED_ROLE % {"role": role})
        messages.error(request, "Choose a role you may grant.")
    else:
        try:
            services.membership_change_role(
                actor=request.principal,
                target=target,
                role=form.cleaned_data["role"],
                context=context_of(request),
            )
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("accounts:members", slug=request.tenant.slug)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
@sudo_required
def member_remove_view(request, pk: int):
    target = selectors.member_get(request.principal, pk)
    try:
        services.membership_remove(
            actor=request.principal, target=target, context=context_of(request)
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"{target.user.email} no longer has access to this tenant.")
    return redirect("accounts:members", slug=request.tenant.slug)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
def invitation_revoke_view(request, pk: int):
    invitation = selectors.invitation_get(request.principal, pk)
    services.invitation_revoke(
        actor=request.principal, invitation=invitation, context=context_of(request)
    )
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("accounts:members", slug=request.tenant.slug)


# --- Invitations ----------------------------------------------------------------------------


def invitation_view(request, secret: str):
    """Trade the link's secret for a session marker, then continue on a URL without it."""
    invitation = services.invitation_find(secret)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    request.session[INVITATION_SESSION_KEY] = invitation.pk
    return redirect("accounts:invitation_accept")


def invitation_accept_view(request):
    from accounts.models import Invitation

    pk = request.session.get(INVITATION_SESSION_KEY)
    invitation = (
        Invitation.objects.pending().select_related("tenant").filter(pk=pk).first() if pk else None
    )
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    user = request.user
    existing = User.objects.filter(email__iexact=invitation.email).exists()
    form = None
    status = 200
    if existing:
        signed_in_as_invitee = (
            user.is_authenticated
            and user.is_verified()
            and user.email.lower() == invitation.email.lower()
        )
        if request.method == "POST" and signed_in_as_invitee:
            services.invitation_accept(
                invitation_id=invitation.pk, user=user, context=context_of(request)
            )
            del request.session[INVITATION_SESSION_KEY]
            messages.success(request, f"Welcome to {invitation.tenant.name}.")
            return redirect("accounts:tenant_home", slug=invitation.tenant.slug)
        context = {"invitation": invitation, "signed_in_as_invitee": signed_in_as_invitee}
    else:
        form = AcceptInvitationForm(request.POST or None, email=invitation.email)
        if request.method == "POST":
            if form.is_valid():
                try:
                    membership = services.invitation_accept(
                        invitation_id=invitation.pk,
                        user=None,
                        full_name=form.cleaned_data["full_name"],
                        password=form.cleaned_data["password1"],
                        context=context_of(request),
                    )
                except ValidationError as error:
                    form.add_error(None, error)
                    status = 400
                else:
                    with contextlib.suppress(KeyError):
                        del request.session[INVITATION_SESSION_KEY]
                    membership.user.login_via = "invitation"  # for the audit (accounts.signals)
                    auth_login(
                        request,
                        membership.user,
                        backend="django.contrib.auth.backends.ModelBackend",
                    )
                    return redirect("accounts:mfa_enrol")
            else:
                status = 400
        context = {"invitation": invitation, "form": form}
    return render(request, "accounts/invitation_accept.html", context, status=status)


# --- Service IDs ----------------------------------------------------------------------------


@tenant_view(roles.Action.SERVICE_IDS_READ)
def service_id_list_view(request):
    membership = request.membership
    can_manage = roles.may(membership.role, roles.Action.SERVICE_IDS_MANAGE)
    form = ServiceIDForm(request.POST or None, actor_role=membership.role) if can_manage else None
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Your role does not allow this.")
        if form.is_valid():
            try:
                service_id = services.service_id_create(
                    actor=request.principal, context=context_of(request), **form.cleaned_data
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, f"Service ID {service_id.name} created.")
                return redirect(
                    "keys:service_id_detail", slug=request.tenant.slug, pk=service_id.pk
                )
        status = 400
    return render(
        request,
        "accounts/serviceid_list.html",
        {
            "service_ids": selectors.service_id_list(membership),
            "form": form,
            "can_manage": can_manage,
        },
        status=status,
    )


@require_POST
@tenant_view(roles.Action.SERVICE_IDS_MANAGE)
def service_id_toggle_view(request, pk: int):
    service_id = selectors.service_id_get(request.principal, pk)
    services.service_id_update(
        actor=request.principal,
        service_id=service_id,
        is_active=not service_id.is_active,
        context=context_of(request),
    )
    state = "enabled" if service_id.is_active else "disabled: its keys stop working now"
    messages.success(request, f"Service ID {service_id.name} {state}.")
    return redirect("keys:service_id_detail", slug=request.tenant.slug, pk=service_id.pk)
