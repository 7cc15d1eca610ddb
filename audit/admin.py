import json

from django.contrib import admin
from django.http import StreamingHttpResponse

import audit
from audit.models import AuditEvent, AuditSeal
from audit.services import Actor
from audit.stream import event_as_dict
from common.request import context_of


class AuditedModelAdmin(admin.ModelAdmin):
    """Record every admin addition, change and deletion in the audit log (same transaction)."""

    def _tenant_of(self, obj):
        if getattr(obj, "audit_kind", "") == "tenant":
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
            context=context_of(request),
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
