"""Operators see key metadata and revoke keys; they never see a digest and never issue keys."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.cache import patch_cache_control

from audit.admin import AuditedModelAdmin
from audit.services import Actor
from common.request import context_of
from keys.models import EXPIRING_SOON, ApiKey, KeyStatus
from keys.services import key_lookup_token, key_revoke

ADMIN_REVOKE_REASON = "Revoked by an operator in the admin."
REVOKED_COUNT = "Revoked %(count)d key(s); %(skipped)d were already revoked."
SHOWN_STATUSES = (KeyStatus.ACTIVE, KeyStatus.EXPIRED, KeyStatus.REVOKED)


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("personal", "Personal access token"), ("service", "Service key")]

    def queryset(self, request, queryset):
        if self.value() == "personal":
            return queryset.filter(user__isnull=False)
        if self.value() == "service":
            return queryset.filter(service_id__isnull=False)
        return queryset


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status.label) for status in SHOWN_STATUSES]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == KeyStatus.ACTIVE:  # usable: expiring and rotated (in grace) too
            return queryset.usable(now)
        if self.value() == KeyStatus.EXPIRED:
            return queryset.filter(revoked_at=None, expires_at__lte=now)
        if self.value() == KeyStatus.REVOKED:
            return queryset.exclude(revoked_at=None)
        return queryset


class ExpiringSoonFilter(admin.SimpleListFilter):
    title = "expiring soon"
    parameter_name = "expiring"

    def lookups(self, request, model_admin):
        return [("7d", f"Within {EXPIRING_SOON.days} days")]

    def queryset(self, request, queryset):
        if self.value() == "7d":
            now = timezone.now()
            return queryset.usable(now).filter(expires_at__lte=now + EXPIRING_SOON)
        return queryset


class TokenLookupForm(forms.Form):
    # SECURITY: a password input, never rendered back: the token leaves no copy in the page.
    token = forms.CharField(
        label="Token",
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Paste the token. It is checked, looked up by its digest, and never stored.",
    )


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    """Key metadata, read-only; the one write is the audited bulk revoke."""

    list_display = [
        "name",
        "hint",
        "tenant",
        "owner_label",
        "status_label",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["tenant", KindFilter, StatusFilter, ExpiringSoonFilter]
    search_fields = ["name", "hint", "user__email", "service_id__name"]
    list_select_related = ["tenant", "user", "service_id"]
    # SECURITY: an explicit field list, so the digest is never rendered, even read-only.
    fields = [
        "name",
        "hint",
        "tenant",
        "user",
        "service_id",
        "scopes",
        "allowed_ips",
        "created_at",
        "created_by",
        "expires_at",
        "rotated_from",
        "rotated_at",
        "revoked_at",
        "revoked_by",
        "revoked_reason",
        "last_used_at",
        "last_used_ip",
    ]
    exclude = ["digest"]
    readonly_fields = fields
    actions = ["revoke_selected", "export_selected"]
    change_list_template = "admin/keys/apikey/change_list.html"
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="owner")
    def owner_label(self, key: ApiKey) -> str:
        return key.owner.label

    @admin.display(description="status")
    def status_label(self, key: ApiKey) -> str:
        return key.status()

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # SECURITY: like UserAdmin with password, refuse any filter on the digest: it would
        # turn the changelist into an oracle for "is this token a valid key?".
        if lookup.split("__")[0] == "digest":
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request) -> bool:
        return False  # keys are issued in the portal (behind 2FA) or by the CLI

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # metadata is read-only; revoking is the action below

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: a deleted key would erase the history it anchors

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("keys.change_apikey")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        """Revoke each selected key through the service, so each revocation is audited."""
        actor = Actor.operator(request.user)
        revoked = skipped = 0
        for key in queryset.select_related("tenant"):
            if key.revoked_at is not None:
                skipped += 1
                continue
            key_revoke(
                actor=actor, key=key, reason=ADMIN_REVOKE_REASON, context=context_of(request)
            )
            revoked += 1
        messages.success(request, REVOKED_COUNT % {"count": revoked, "skipped": skipped})

    @admin.action(description="Export selected keys as CSV (streamed)")
    def export_selected(self, request, queryset):
        """Stream the selected keys' inventory (constant memory); audited as the operator."""
        from keys.services.inventory import key_inventory_export
        from keys.views.inventory import csv_response

        lines = key_inventory_export(
            actor=Actor.operator(request.user), queryset=queryset, context=context_of(request)
        )
        return csv_response(lines, f"keys-{timezone.now():%Y-%m-%d}.csv")

    def get_urls(self):
        lookup = path(
            "lookup/",
            self.admin_site.admin_view(self.lookup_view),
            name="keys_apikey_lookup",
        )
        return [lookup, *super().get_urls()]

    def lookup_view(self, request):
        """Look up a pasted token (POST only), like ``keyward_lookup_token``; audited as the
        operator, with the token's hint only."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TokenLookupForm(request.POST if request.method == "POST" else None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = key_lookup_token(
                actor=Actor.operator(request.user),
                token=form.cleaned_data["token"],
                context=context_of(request),
            )
            form = TokenLookupForm()  # never render the token back
        context = {
            **self.admin_site.each_context(request),
            "title": "Look up a token",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        response = TemplateResponse(request, "admin/keys/apikey/lookup.html", context)
        patch_cache_control(response, no_store=True, no_cache=True, private=True)
        return response
