# The quarantine list's default order, "waiting longest first", is
# (state_changed_at, id) among the Quarantined devices (devices.filters,
# DEVICE_SORTS["waiting"]). Without an index on it PostgreSQL fetches and sorts
# every quarantined device for every page: 50 ms for the first page of 20,000,
# 150 ms and more deep in the list (bench/bench_quarantine.py, docs/PERFORMANCE.md).
# With it the first page reads its 50 rows in index order, and the purge of
# stale quarantine (access_state, state_changed_at <=) uses it too.
#
# Raw SQL, so that the index is not part of the models' migration state: the
# model (devices/models.py, MobileDevice.Meta.indexes) is not this change's to
# edit. Whoever adds the index there should make this migration's operation a
# migrations.SeparateDatabaseAndState(state_operations=[AddIndex(... the same
# name ...)]), so that the index is not created twice.

from django.db import migrations

INDEX = "devices_mobiledevice_waiting_idx"


class Migration(migrations.Migration):
    dependencies = [("devices", "0007_rule_change_job")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX}"
            " ON devices_mobiledevice (access_state, state_changed_at, id)",
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
