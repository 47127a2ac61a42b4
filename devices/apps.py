from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "ActiveSync devices"

    def ready(self):
        from ecp import checks  # noqa: F401 (registers the configuration checks)

        from .gate import decisions

        decisions.connect_saves()
