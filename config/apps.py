from django.contrib.admin.apps import AdminConfig


class KeywardAdminConfig(AdminConfig):
    default_site = "config.admin.KeywardAdminSite"
