from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.lockout import account_unlock
from accounts.models import AuthenticatorDevice, Invitation, Membership, ServiceID, Tenant, User
from audit.admin import AuditedModelAdmin
from audit.services import Actor
from common.request import context_of


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class KeywardUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class KeywardUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    add_form = KeywardUserCreationForm
    form = KeywardUserChangeForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_active", "is_staff", "locked_at", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["last_login", "date_joined", "failed_auth_count", "locked_at"]
    inlines = [MembershipInline]
    actions = ["unlock_accounts"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Security", {"fields": ["failed_auth_count", "locked_at", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    filter_horizontal = ["groups"]

    @admin.action(description="Unlock selected accounts")
    def unlock_accounts(self, request, queryset):
        for user in queryset.exclude(locked_at=None):
            account_unlock(
                user=user, actor=Actor.operator(request.user), context=context_of(request)
            )
        messages.success(request, "Selected accounts are unlocked.")


@admin.register(Tenant)
class TenantAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "slug",
        "is_active",
        "max_key_lifetime_days",
        "leak_policy",
        "created_at",
    ]
    list_filter = ["is_active", "leak_policy", "allow_non_expiring_keys"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(AuditedModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__slug"]
    raw_id_fields = ["user", "tenant"]
    list_select_related = ["user", "tenant"]


@admin.register(ServiceID)
class ServiceIDAdmin(AuditedModelAdmin):
    list_display = ["name", "tenant", "role", "is_active", "created_at"]
    list_filter = ["is_active", "role", "tenant"]
    search_fields = ["name", "tenant__slug"]
    raw_id_fields = ["tenant", "created_by"]
    list_select_related = ["tenant"]


@admin.register(Invitation)
class InvitationAdmin(AuditedModelAdmin):
    list_display = ["email", "tenant", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["email", "tenant__slug"]
    exclude = ["digest"]
    readonly_fields = [
        "tenant",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
    ]
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False


@admin.register(AuthenticatorDevice)
class AuthenticatorDeviceAdmin(AuditedModelAdmin):
    """Metadata only, never the seed (not even sealed). Operators may delete a lost
    authenticator (audited); adding and changing happen in the portal, by the person."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__email", "name"]
    list_select_related = ["user"]
    fields = [
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    ]
    readonly_fields = fields

    def _target(self, obj):
        return obj.user

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
