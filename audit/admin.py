from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "tenant",
        "action",
        "outcome",
        "actor_label",
        "target_label",
        "ip",
    ]
    list_filter = ["outcome", "actor_kind", "action", "tenant"]
    search_fields = ["actor_label", "target_label", "action", "request_id", "ip"]
    date_hierarchy = "occurred_at"
    list_select_related = ["tenant"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
