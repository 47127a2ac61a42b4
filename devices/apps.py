from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "ActiveSync devices"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from ecp import checks  # noqa: F401 (registers the configuration checks)

        from .preferences import on_sign_in

        user_logged_in.connect(on_sign_in, dispatch_uid="ecp-preferences")

        from .gate import decisions

        decisions.connect_saves()
