from django.contrib import admin

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "tenant", "created_at", "disabled_at")
    list_filter = ("disabled_at",)
    search_fields = ("url", "tenant__slug")
    raw_id_fields = ("tenant", "created_by")
    list_select_related = ("tenant",)
    exclude = ("secret_sealed", "previous_secret_sealed")
    readonly_fields = ("tenant", "url", "events", "created_by", "failing_since")

    def has_add_permission(self, request):
        return False  # endpoints are added in the portal, with sudo and an audit event


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("attempted_at", "status_code", "duration_ms", "error")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("msg_id", "event_type", "endpoint", "status", "attempt_count", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("msg_id", "endpoint__url")
    raw_id_fields = ("endpoint",)
    list_select_related = ("endpoint",)
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
