# The quarantine list's search matches mailboxes by substring (alias, display
# name, address: Mailbox.search_text LIKE '%...%'), once per search over all
# 100,000 mailboxes of a large organisation: ~50 ms as a scan. On PostgreSQL a
# trigram index (pg_trgm, a trusted extension: the database's owner may create
# it) answers in a few milliseconds (docs/PERFORMANCE.md). Elsewhere, or where
# the extension cannot be created, nothing changes but the speed of a search.
# Raw SQL, outside the models' state: the index exists on PostgreSQL only.

from django.db import DatabaseError, migrations, transaction

INDEX = "mailbox_search_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        print(f"\n  pg_trgm unavailable ({exc}); searches scan the mailboxes instead")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON devices_mailbox"
        " USING gin (search_text gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("devices", "0009_search_text_and_list_indexes")]

    operations = [migrations.RunPython(create, drop)]
