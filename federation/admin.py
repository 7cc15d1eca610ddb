from django.contrib import admin

from audit.admin import ReadOnlyAdmin
from federation.models import RevokedToken, SigningKey, WorkloadTrust


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """Read-only: keys are made by ``manage.py jwt_rotate_key``; the sealed private key is never
    shown."""

    list_display = ["kid", "algorithm", "created_at", "retired_at"]
    list_filter = ["algorithm"]
    search_fields = ["kid"]
    fields = ["kid", "algorithm", "public_jwk", "created_at", "retired_at"]
    readonly_fields = fields


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):
    list_display = ["jti", "tenant", "key_id", "revoked_at", "expires_at"]
    list_filter = ["tenant"]
    search_fields = ["jti"]
    raw_id_fields = ["tenant"]
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkloadTrust)
class WorkloadTrustAdmin(admin.ModelAdmin):
    list_display = ["service_id", "issuer", "audience", "subject_pattern", "removed_at"]
    list_filter = ["issuer"]
    search_fields = ["issuer", "subject_pattern", "service_id__name"]
    raw_id_fields = ["service_id", "created_by"]
    list_select_related = ["service_id__tenant"]

    def has_add_permission(self, request):
        return False  # trusts are added by an owner in the portal, behind a second factor

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
