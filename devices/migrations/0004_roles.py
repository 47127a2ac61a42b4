"""The control panel's roles as groups: Organization Management and Help Desk.

devices.permissions checks membership by group name, so the groups carry no
model permissions of their own here (the notifications app grants its Sent
mail permissions to Organization Management in its own migration). End users
are logins linked to a mailbox, in neither group.
"""

from django.db import migrations

ROLES = ("Organization Management", "Help Desk")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    for name in ROLES:
        Group.objects.using(db).get_or_create(name=name)


def remove_groups(apps, schema_editor):
    # Leave Organization Management alone: other apps hang permissions on it.
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(
        name="Help Desk", user__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0003_notification_settings"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
