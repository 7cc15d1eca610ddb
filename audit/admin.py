import json

from django.contrib import admin
from django.http import StreamingHttpResponse

from audit.models import AuditEvent, AuditSeal
from audit.services import event_as_dict


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log is append-only: nobody adds, changes or deletes it here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
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
    search_fields = ["actor_label", "target_label", "=action", "=request_id", "=ip"]
    date_hierarchy = "occurred_at"
    list_select_related = ["tenant"]
    show_full_result_count = False
    actions = ["export_jsonl"]

    @admin.action(description="Export selected events as JSON Lines")
    def export_jsonl(self, request, queryset):
        rows = queryset.select_related("tenant").order_by("id").iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            (json.dumps(event_as_dict(e), default=str) + "\n" for e in rows),
            content_type="application/x-ndjson",
        )
        response["Content-Disposition"] = 'attachment; filename="keyward-audit.jsonl"'
        return response


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "first_event_id",
        "last_event_id",
        "event_count",
        "seal_hash",
    ]
    exclude = ["entries"]
