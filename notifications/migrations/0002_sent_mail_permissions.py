"""Organization Management may read the Sent mail page and resend mails."""

from django.db import migrations

GROUP = "Organization Management"
PERMISSIONS = {
    "view_notification": "Can view notification",
    "change_notification": "Can change notification",
}


def _permissions(apps, db):
    # Permissions are normally made after migrate (post_migrate); this
    # migration needs them now, so it makes them the way post_migrate would.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.using(db).get_or_create(
        app_label="notifications", model="notification"
    )
    return [
        Permission.objects.using(db).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    ]


def grant(apps, schema_editor):
    db = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps, db))


def revoke(apps, schema_editor):
    db = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.using(db).filter(
        content_type__app_label="notifications", codename__in=PERMISSIONS
    )
    for group in Group.objects.using(db).filter(name=GROUP):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
