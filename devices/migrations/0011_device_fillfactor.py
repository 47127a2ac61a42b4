# Room on each page of the devices table for a row's next version. The gate
# writes a device's last_seen once a minute while it syncs; when the new
# version fits on the row's own page and no indexed column changed, PostgreSQL
# updates it in place (a HOT update) and writes none of the table's nine
# indexes. On full pages every such write goes to all of them. Rule changes
# that move 100,000 devices also write faster (docs/PERFORMANCE.md). Applies to
# pages written from now on; `VACUUM FULL devices_mobiledevice` repacks older ones.

from django.db import migrations


def apply(apps, schema_editor, fillfactor=80):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE devices_mobiledevice SET (fillfactor = {int(fillfactor)})"
        )


def revert(apps, schema_editor):
    apply(apps, schema_editor, fillfactor=100)


class Migration(migrations.Migration):
    dependencies = [("devices", "0010_mailbox_search_trigram")]

    operations = [migrations.RunPython(apply, revert)]
