from django.apps import AppConfig
from django.core import checks


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Prometheus metrics"

    def ready(self) -> None:
        from metrics.checks import check_metrics_settings

        checks.register(check_metrics_settings, "keyward")
