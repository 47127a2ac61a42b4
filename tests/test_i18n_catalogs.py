"""The translations are complete: every string the code marks is translated in every
language, and the committed .mo files are the .po files compiled.

After adding strings: `make messages`, translate what it added, `make messages` again
(README, "Languages and time zones").
"""

import gettext
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from devices.management.commands.makemessages import IGNORED
from tests.conftest import need_service

LANGUAGES = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
LOCALE = Path(settings.BASE_DIR) / "locale"


def _gettext_tools():
    need_service(
        "GNU gettext",
        all(shutil.which(tool) for tool in ("xgettext", "msgmerge", "msgfmt", "msgattrib")),
        "apt-get install gettext",
    )


def _po(language: str, root: Path = LOCALE) -> Path:
    return root / language / "LC_MESSAGES" / "django.po"


def _entries(po: Path, *flags: str) -> str:
    """msgattrib's selection of the catalog's entries (without its header)."""
    out = subprocess.run(
        ["msgattrib", "--no-obsolete", "--no-wrap", *flags, str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    blocks = [b for b in out.split("\n\n") if b.strip() and 'msgid ""\nmsgstr ""' not in b]
    return "\n\n".join(blocks)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """The catalogs as `make messages` would leave them: the committed ones merged with
    what the code marks now, extracted from a copy of the sources (the real files stay)."""
    _gettext_tools()
    copy = tmp_path_factory.mktemp("i18n") / "src"
    skipped = {p.split("/")[0] for p in IGNORED} | {".git", "__pycache__", ".ruff_cache"}
    shutil.copytree(
        settings.BASE_DIR,
        copy,
        ignore=shutil.ignore_patterns(*skipped, "*.pyc", "*.mo"),
    )
    here = os.getcwd()
    os.chdir(copy)
    try:
        call_command("makemessages", verbosity=0)
    finally:
        os.chdir(here)
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_it_ships_a_catalog_per_language(language):
    assert _po(language).is_file()
    assert (_po(language).with_suffix(".mo")).is_file()


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_string_of_the_code_is_missing_or_untranslated(extracted, language):
    po = _po(language, extracted)
    untranslated = _entries(po, "--untranslated")
    fuzzy = _entries(po, "--only-fuzzy")
    assert not untranslated, (
        f"{language}: strings without a translation (run `make messages`, translate them in"
        f" locale/{language}/LC_MESSAGES/django.po, run `make messages` again):\n{untranslated}"
    )
    assert not fuzzy, f"{language}: fuzzy (guessed) translations to check:\n{fuzzy}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_catalog_is_up_to_date_with_the_code(extracted, language):
    """Same msgids as a fresh extraction: no string the code lost, none it gained."""

    def msgids(po: Path) -> set[str]:
        return {
            block.split("msgstr", 1)[0] for block in _entries(po).split("\n\n") if block.strip()
        }

    committed, fresh = msgids(_po(language)), msgids(_po(language, extracted))
    assert committed == fresh, (
        "run `make messages`: "
        f"new in the code {sorted(fresh - committed)[:10]}, gone {sorted(committed - fresh)[:10]}"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_and_plurals_are_kept(language):
    """msgfmt --check: python-format placeholders, plural forms, the header."""
    _gettext_tools()
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(_po(language))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_is_the_po_compiled(tmp_path, language):
    _gettext_tools()
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(_po(language))], check=True)
    with fresh.open("rb") as f:
        expected = gettext.GNUTranslations(f)._catalog
    with _po(language).with_suffix(".mo").open("rb") as f:
        committed = gettext.GNUTranslations(f)._catalog
    assert committed == expected, "run `make messages` to compile the .mo files again"
