"""Django's makemessages with ECP's defaults, so that `make messages` and the
completeness test (tests/test_i18n_catalogs.py) extract the same strings.

Without -l/--all: every language of settings.LANGUAGES but English (the source).
Always: no source locations (fewer merge conflicts between branches), obsolete
entries dropped, and the folders that hold no shipped strings skipped.
"""

from django.conf import settings
from django.core.management.commands import makemessages

# Folders that ship no user-facing string (tests, benchmarks, docs, vendored static files).
IGNORED = [".venv", ".venv/*", "var/*", "tests/*", "bench/*", "deploy/*", "docs/*", "static/*"]


class Command(makemessages.Command):
    def handle(self, *args, **options):
        if not (options.get("locale") or options.get("all") or options.get("exclude")):
            options["locale"] = [
                code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE
            ]
        options["ignore_patterns"] = [*(options.get("ignore_patterns") or []), *IGNORED]
        options["no_location"] = True
        options["no_obsolete"] = True
        return super().handle(*args, **options)
