"""A person's tenants, a tenant's home and members, and invitations (sent, revoked, accepted).

Removing a member revokes their keys and its confirmation page lists them, so it lives in
``keys`` (``keys:member_remove``).
"""

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import roles, selectors, services
from accounts.decorators import restore_posted_form, sudo_required, tenant_view
from accounts.forms import (
    AcceptInvitationForm,
    InviteForm,
    RoleForm,
    SignInPolicyForm,
    add_errors,
    role_choices,
)
from accounts.models import Invitation, Membership, User
from accounts.services.sign_in_policy import tenant_passkey_policy_set
from common.request import context_of

INVITATION_SESSION_KEY = "keyward_invitation"
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


def home_view(request):
    memberships = selectors.user_memberships(request.user)
    if len(memberships) == 1:
        return redirect("accounts:tenant_home", slug=memberships[0].tenant.slug)
    return render(request, "accounts/home.html", {"memberships": memberships})


@tenant_view()
def tenant_home_view(request):
    role = request.membership.role
    context = {
        "can": {a.name.lower(): roles.may(role, a) for a in roles.Action},
        "membership": request.membership,
    }
    return render(request, "accounts/tenant_home.html", context)


# --- Members --------------------------------------------------------------------------------


def _members_page(request, *, invite_form=None, status=200):
    role = request.membership.role
    manage = roles.may(role, roles.Action.MEMBERS_MANAGE)
    members = list(selectors.member_list(request.principal))
    for m in members:
        m.can_manage = manage and roles.can_assign(role, m.role)
    context = {
        "members": members,
        "invitations": selectors.invitation_list(request.principal) if manage else [],
        "can_manage": manage,
        "invite_form": invite_form
        or InviteForm(initial=restore_posted_form(request, InviteForm), actor_role=role),
        "role_choices": role_choices(role),
    }
    return render(request, "accounts/membership_list.html", context, status=status)


def _members_redirect(request):
    return redirect("accounts:members", slug=request.tenant.slug)


@tenant_view(roles.Action.MEMBERS_READ)
def member_list_view(request):
    return _members_page(request)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
@sudo_required  # an invitation grants a role
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
            add_errors(form, error)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return _members_redirect(request)
    return _members_page(request, invite_form=form, status=400)


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
@sudo_required
def member_role_view(request, pk: int):
    target = selectors.member_get(request.principal, pk)
    form = RoleForm(request.POST, actor_role=request.membership.role)
    if form.is_valid():
        _change_role(request, target, form.cleaned_data["role"])
    else:
        role = request.POST.get("role")
        if role in roles.Role.values:
            # SECURITY: a real role this member may not grant (an admin making an owner) is a
            # 403, as the service would answer, not a redirect that looks like success.
            raise PermissionDenied(services.NOT_ALLOWED_ROLE % {"role": role})
        messages.error(request, "Choose a role you may grant.")
    return _members_redirect(request)


def _change_role(request, target: Membership, role: str) -> None:
    try:
        services.membership_change_role(
            actor=request.principal, target=target, role=role, context=context_of(request)
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")


@require_POST
@tenant_view(roles.Action.MEMBERS_MANAGE)
def invitation_revoke_view(request, pk: int):
    invitation = selectors.invitation_get(request.principal, pk)
    services.invitation_revoke(
        actor=request.principal, invitation=invitation, context=context_of(request)
    )
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return _members_redirect(request)


# --- Invitations ----------------------------------------------------------------------------


def invitation_view(request, secret: str):
    """Trade the link's secret for a session marker, then continue on a URL without it."""
    invitation = services.invitation_find(secret)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    request.session[INVITATION_SESSION_KEY] = invitation.pk
    return redirect("accounts:invitation_accept")


def invitation_accept_view(request):
    pk = request.session.get(INVITATION_SESSION_KEY)
    invitation = (
        Invitation.objects.pending().select_related("tenant").filter(pk=pk).first() if pk else None
    )
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    if User.objects.filter(email__iexact=invitation.email).exists():
        return _accept_as_member(request, invitation)
    return _accept_as_new_user(request, invitation)


def _accept_as_member(request, invitation: Invitation):
    """Someone with an account accepts, signed in as the invited address."""
    user = request.user
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
    return render(request, "accounts/invitation_accept.html", context)


def _accept_as_new_user(request, invitation: Invitation):
    """Someone new chooses a name and password, is logged in, and goes on to enrol."""
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST":
        membership = _create_invitee(request, invitation, form) if form.is_valid() else None
        if membership is not None:
            request.session.pop(INVITATION_SESSION_KEY, None)
            membership.user.login_via = "invitation"  # named in its audit event (signals.py)
            auth_login(request, membership.user, backend=PASSWORD_BACKEND)
            return redirect("accounts:mfa_enrol")
    context = {"invitation": invitation, "form": form}
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/invitation_accept.html", context, status=status)


def _create_invitee(request, invitation: Invitation, form) -> Membership | None:
    try:
        return services.invitation_accept(
            invitation_id=invitation.pk,
            user=None,
            full_name=form.cleaned_data["full_name"],
            password=form.cleaned_data["password1"],
            context=context_of(request),
        )
    except ValidationError as error:
        form.add_error(None, error)
        return None


# --- Sign-in policy ---------------------------------------------------------------------------


@tenant_view(roles.Action.POLICY_EDIT)
@sudo_required
def sign_in_policy_view(request):
    """GET: the tenant's sign-in policy. POST: require a passkey of every member, or not."""
    form = SignInPolicyForm(
        request.POST or None,
        initial={"require_passkey": request.tenant.require_phishing_resistant_mfa},
    )
    if request.method == "POST" and form.is_valid():
        try:
            tenant_passkey_policy_set(
                actor=request.principal,
                require=form.cleaned_data["require_passkey"],
                context=context_of(request),
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, "Sign-in policy saved.")
            return redirect("accounts:sign_in_policy", slug=request.tenant.slug)
    context = {
        "form": form,
        "without_passkey": selectors.members_without_passkey(request.principal),
    }
    return render(request, "accounts/tenant_sign_in_policy.html", context)
