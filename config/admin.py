"""The operators' admin: staff with a verified second factor only; every change is audited."""

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

import audit
from audit.services import Actor


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
                request=request,
                metadata={"reason": "not staff" if not user.is_staff else "second factor missing"},
            )
        if user.is_authenticated and user.is_verified():
            # Verified but not an operator: the portal login would send them straight back.
            raise PermissionDenied("The admin is for operators.")
        target = request.GET.get("next") or reverse("admin:index")
        step = "accounts:mfa_verify" if user.is_authenticated else "accounts:login"
        return redirect(f"{reverse(step)}?{urlencode({'next': target})}")


class AuditedModelAdmin(admin.ModelAdmin):
    """Record every admin addition, change and deletion in the audit log (same transaction)."""

    def _tenant_of(self, obj):
        from accounts.models import Tenant

        if isinstance(obj, Tenant):
            return obj
        return getattr(obj, "tenant", None)

    def _target(self, obj):
        return obj if hasattr(obj, "audit_kind") else None

    def _record(self, request, obj, action, metadata):
        audit.record(
            action,
            actor=Actor.operator(request.user),
            tenant=self._tenant_of(obj),
            target=self._target(obj),
            request=request,
            metadata={"model": obj._meta.label, "object_id": str(obj.pk), **metadata},
        )

    def log_addition(self, request, obj, message):
        self._record(request, obj, "admin.added", {})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        changed = sorted({f for m in message for f in m.get("changed", {}).get("fields", [])})
        self._record(request, obj, "admin.changed", {"fields": changed})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._record(request, obj, "admin.deleted", {"label": str(obj)[:200]})
        return super().log_deletions(request, queryset)
