"""The operators' admin: staff with a verified second factor only; every change is audited."""

from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

import audit
from common.request import context_of


class KeywardAdminSite(OTPAdminSite):
    site_header = "Keyward operations"
    site_title = "Keyward admin"
    index_title = "Installation"

    def login(self, request, extra_context=None):
        # One login path for everyone: the portal's, with its throttles, lock and 2FA.
        user = request.user
        if user.is_authenticated:
            audit.record(
                "admin.denied",
                actor=user,
                target=user,
                outcome="denied",
                context=context_of(request),
                metadata={"reason": "not staff" if not user.is_staff else "second factor missing"},
            )
        if user.is_authenticated and user.is_verified():
            # Verified but not an operator: the portal login would send them straight back.
            raise PermissionDenied("The admin is for operators.")
        target = request.GET.get("next") or reverse("admin:index")
        step = "accounts:mfa_verify" if user.is_authenticated else "accounts:login"
        return redirect(f"{reverse(step)}?{urlencode({'next': target})}")
