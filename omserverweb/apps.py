from django.apps import AppConfig


class OMServerWebConfig(AppConfig):
    """The project package as an app: shared templates, checks and commands."""

    name = "omserverweb"
    verbose_name = "OMServer"

    def ready(self) -> None:
        from omserverweb import checks  # noqa: F401  (registers the start-up checks)
