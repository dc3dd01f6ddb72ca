from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "Agent runner"
    default_auto_field = "django.db.models.BigAutoField"
