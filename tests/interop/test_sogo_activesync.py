"""A real EAS client through the project's nginx files, ECP under gunicorn and SOGo.

    pyactivesync --TLS--> nginx (deploy/nginx/) --auth_request--> ECP (gunicorn)
                                                 --error_page 403-> ECP /eas/answer
                                                 --proxy_pass----> sogod (sogo-activesync)
                                                                      --IMAP--> dovecot
                                                                      memcached, PostgreSQL

Debian's sogo 5.8, sogo-activesync, dovecot-imapd and memcached (.ci/run
installs them) run on free loopback ports from files in a temporary
directory; nginx runs deploy/nginx/ecp-gate.conf with only its CHANGE lines
adapted (SOGo's `/SOGo` prefix goes into `$ecp_eas_upstream`, as
deploy/nginx/README.md says). The client is pyactivesync 0.17.0 from PyPI,
which shares no code with ECP.

SOGo 5.8 answers Provision with "no policy" (Policy Status 2, no PolicyKey),
which pyactivesync refuses (ProvisionError); the client then goes on
unprovisioned, as SOGo allows.

After Allow, a mail that Dovecot's own delivery agent (dovecot-lda) puts into
the INBOX reaches the same client. SOGo 5.8 builds a mail folder's sync state
from the IMAP HIGHESTMODSEQ. Dovecot reports HIGHESTMODSEQ on a plain SELECT only
once some client has enabled CONDSTORE/QRESYNC on that mailbox (RFC 7162). Until
then SOGo's folder tag is "-1", the same as the key it gives a new device, so
each Sync answers "no changes" and the device never sees the Inbox's mail. That
happens with or without ECP in front. SOGo itself sends ENABLE QRESYNC when it
counts or searches the folder, for example on a GetItemEstimate. So the client
asks for an estimate before its first real Sync, as many EAS clients do. Set
ECP_INTEROP_DEBUG=1 to turn on SOGo's EAS and IMAP debug logs, and
ECP_INTEROP_KEEP=1 to keep them.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

from devices import actions
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from tests.conftest import need_service
from tests.integration.test_faults_support import (
    Gunicorn,
    Process,
    database_url,
    eventually,
    free_port,
    project_env,
)

try:
    import pyactivesync  # requirements-dev.txt pins it
except ImportError:  # pragma: no cover - need_service fails the tests in CI
    pyactivesync = None

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SOGOD = shutil.which("sogod") or "/usr/sbin/sogod"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
ADMIN = Actor(source=AuditSource.CLI)
PASSWORD = "alice-secret"
DECISION_CACHE_SECONDS = 2
INSERT = "Questions? Ring the helpdesk on 555-0100."


def _installed(path: str) -> bool:
    return os.path.exists(path)


@pytest.fixture(scope="module")
def tmp():
    need_service("pyactivesync", pyactivesync is not None, "pip install -r requirements-dev.txt")
    need_service("root", os.geteuid() == 0, "sogod runs as the sogo user, dovecot as root")
    for name, path in [
        ("sogod (sogo, sogo-activesync)", SOGOD),
        ("dovecot (dovecot-imapd)", DOVECOT),
        ("dovecot-lda (dovecot-core)", DOVECOT_LDA),
        ("memcached", MEMCACHED),
        ("nginx", NGINX),
    ]:
        need_service(name, _installed(path), "apt-get install sogo sogo-activesync dovecot-imapd")
    need_service("openssl", bool(shutil.which("openssl")), "for nginx's test certificate")
    # Not under pytest's own (mode 0700) directory: the sogo, dovecot and memcache
    # users must reach their files.
    path = Path(tempfile.mkdtemp(prefix="ecp-interop-"))
    path.chmod(0o1777)
    yield path
    if not os.environ.get("ECP_INTEROP_KEEP"):  # keep the logs to read them
        shutil.rmtree(path, ignore_errors=True)


# --- the mail stack -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot(tmp):
    port = free_port()
    mail = tmp / "mail"
    mail.mkdir()
    shutil.chown(mail, "sogo", "sogo")
    (tmp / "dovecot.passwd").write_text(f"alice:{{PLAIN}}{PASSWORD}\n")
    conf = tmp / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {tmp}/dovecot-run
state_dir = {tmp}/dovecot-state
log_path = {tmp}/dovecot.log
protocols = imap
postmaster_address = postmaster@contoso.com
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:{mail}/%u/Maildir
mail_uid = sogo
mail_gid = sogo
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/dovecot.passwd
}}
userdb {{
  driver = static
  args = uid=sogo gid=sogo home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    )
    process = Process("dovecot", [DOVECOT, "-F", "-c", str(conf)], tmp / "dovecot.out").start()
    eventually(lambda: _listens(port), "dovecot to listen", on_timeout=process.tail)
    yield port, conf
    process.stop()


@pytest.fixture(scope="module")
def memcached(tmp):
    port = free_port()
    command = [MEMCACHED, "-u", "memcache", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    process = Process("memcached", command, tmp / "memcached.log").start()
    eventually(lambda: _listens(port), "memcached to listen", on_timeout=process.tail)
    yield port
    process.stop()


@pytest.fixture(scope="module")
def sogo_database(django_db_setup):
    need_service("PostgreSQL", connection.vendor == "postgresql", "SOGo keeps its state there")
    settings = connection.settings_dict
    name = f"{settings['NAME']}_sogo"
    admin = psycopg.connect(database_url(settings), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(database_url({**settings, "NAME": name}), autocommit=True) as db:
        db.execute(
            "CREATE TABLE sogo_users (c_uid varchar(128) PRIMARY KEY, c_name varchar(128),"
            " c_password varchar(256), c_cn varchar(256), mail varchar(256))"
        )
        db.execute(
            "INSERT INTO sogo_users VALUES (%s, %s, %s, %s, %s)",
            ["alice", "alice", PASSWORD, "Alice Liddell", "alice@contoso.com"],
        )
    user = quote(settings["USER"] or "postgres", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or "5432"
    yield f"postgresql://{user}:{password}@{host}:{port}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def sogo(tmp, dovecot, memcached, sogo_database):
    port = free_port()
    imap_port, _ = dovecot
    url = sogo_database
    user_source = (
        f'({{type = sql; id = users; viewURL = "{url}/sogo_users"; canAuthenticate = YES;'
        " isAddressBook = NO; userPasswordAlgorithm = plain;})"
    )
    defaults = {
        "WOPort": f"127.0.0.1:{port}",
        "WOWorkersCount": "1",  # 2 would race to create its tables in a new database
        "WONoDetach": "YES",
        "WOLogFile": str(tmp / "sogo.log"),
        "WOPidFile": str(tmp / "sogo.pid"),
        "SOGoMemcachedHost": f"127.0.0.1:{memcached}",
        "SOGoProfileURL": f"{url}/sogo_user_profile",
        "OCSFolderInfoURL": f"{url}/sogo_folder_info",
        "OCSSessionsFolderURL": f"{url}/sogo_sessions_folder",
        "OCSCacheFolderURL": f"{url}/sogo_cache_folder",
        "OCSEMailAlarmsFolderURL": f"{url}/sogo_alarms_folder",
        "OCSStoreURL": f"{url}/sogo_store",
        "OCSAclURL": f"{url}/sogo_acl",
        "OCSAdminURL": f"{url}/sogo_admin",
        "SOGoIMAPServer": f"imap://127.0.0.1:{imap_port}",
        "SOGoMailDomain": "contoso.com",
        "SOGoTimeZone": "UTC",
        "SOGoUserSources": user_source,
        "SOGoMaximumPingInterval": "60",
        "SOGoMaximumSyncInterval": "30",
        "SOGoInternalSyncInterval": "5",
    }
    if os.environ.get("ECP_INTEROP_DEBUG"):
        defaults.update(SOGoEASDebugEnabled="YES", ImapDebugEnabled="YES", SOGoDebugRequests="YES")
    # Command-line defaults (NSArgumentDomain) win over /etc/sogo/sogo.conf, which stays as is.
    command = [SOGOD, *[part for key, value in defaults.items() for part in (f"-{key}", value)]]
    process = Process("sogod", command, tmp / "sogo.out", user="sogo")
    process.new_session = True
    process.start()
    eventually(lambda: _listens(port), "sogod to listen", timeout=60, on_timeout=process.tail)
    yield port
    process.kill_group()


# --- ECP and nginx -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecp(tmp, django_db_setup):
    env = project_env(
        DATABASE_URL=database_url(connection.settings_dict),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        ECP_NOTICE_HOLD_SECONDS=2,
        ECP_NOTICE_POLL_SECONDS=1,
        # Each of the two workers keeps its own decision cache (no CACHE_URL here, so no
        # shared change version): an Allow reaches both within this bound.
        ECP_DECISION_CACHE_SECONDS=DECISION_CACHE_SECONDS,
    )
    gunicorn = Gunicorn(tmp, env, workers=2).start()
    yield gunicorn
    gunicorn.stop()


def _substitute(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/ecp-gate.conf no longer has {old!r} once"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def nginx(tmp, ecp, sogo):
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=mail.example.org"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    https_port, http_port = free_port(), free_port()
    text = (DEPLOY / "ecp-gate.conf").read_text()
    for old, new in [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{ecp.port};"),
        ("server eas-backend.example.org:443;", f"server 127.0.0.1:{sogo};"),
        # SOGo serves ActiveSync under /SOGo (deploy/nginx/README.md, "SOGo").
        (
            "set $ecp_eas_upstream https://eas_server;",
            "set $ecp_eas_upstream http://eas_server/SOGo$request_uri;",
        ),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("/etc/ssl/certs/mail.example.org.fullchain.pem", str(cert)),
        ("/etc/ssl/private/mail.example.org.key", str(key)),
        ("/etc/ssl/certs/ca-certificates.crt", str(cert)),
        (
            "include /etc/nginx/snippets/ecp-gate-locations.conf;",
            f"include {DEPLOY / 'ecp-gate-locations.conf'};",
        ),
    ]:
        text = _substitute(text, old, new)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        "user root root;\nworker_processes 1;\n"
        f"error_log {tmp / 'nginx-error.log'} info;\n"
        "events { worker_connections 128; }\n"
        f"http {{\n    access_log {tmp / 'nginx-access.log'};\n{temp_paths}\n{text}\n}}\n"
    )
    args = [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = Process(
        "nginx", [*args, "-g", f"daemon off; pid {tmp / 'nginx.pid'};"], tmp / "nginx.out"
    ).start()
    eventually(lambda: _listens(https_port), "nginx to listen", on_timeout=process.tail)
    yield f"127.0.0.1:{https_port}", cert
    process.stop()


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


# --- the phone ---------------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password=PASSWORD
    ).obj


def phone(nginx, device_id: str, *, user_agent: str | None = None):
    server, cert = nginx
    client = pyactivesync.Client(server, "alice", PASSWORD, device_id=device_id, timeout=60)
    session = client._transport.session
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the test certificate
    session.verify = str(cert)
    if user_agent:
        client._transport.session.headers["User-Agent"] = user_agent
    return client


def provision_as_sogo_allows(client) -> None:
    """SOGo 5.8 has no policy to hand out; pyactivesync wants a PolicyKey."""
    with pytest.raises(pyactivesync.ProvisionError):
        client.provision()
    client._provisioned = True


def inbox_of(client):
    [inbox] = [f for f in client.list_folders() if f.type == pyactivesync.FolderType.INBOX]
    return inbox


def sync_until(client, folder_id: str, wanted):
    """Sync as a new phone does (SyncKey 0, then the key it got) until an added item
    satisfies `wanted`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        key = client.sync_folder(folder_id, "0").sync_key
        result = client.sync_folder(folder_id, key)
        found = [item.fields for item in result.added if wanted(item.fields)]
        if found:
            return found[0], result.sync_key
        time.sleep(1)
    raise AssertionError(f"nothing wanted arrived in {folder_id}")


def deliver(dovecot, subject: str) -> None:
    """Dovecot's delivery agent puts a mail into alice's INBOX, as a real MTA would."""
    _, conf = dovecot
    message = (
        "From: Bob <bob@contoso.com>\r\nTo: Alice <alice@contoso.com>\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{uuid.uuid4()}@contoso.com>\r\n"
        f"Date: {formatdate()}\r\n\r\nDelivered by dovecot-lda.\r\n"
    )
    delivered = subprocess.run(
        [DOVECOT_LDA, "-c", str(conf), "-d", "alice", "-f", "bob@contoso.com"],
        input=message.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert delivered.returncode == 0, delivered.stderr.decode(errors="replace")


def state(device_id: str):
    device = MobileDevice.objects.get(device_id=device_id)
    return device.access_state, device.access_state_reason


def test_a_new_phone_sees_the_notice_then_syncs_real_mail_once_allowed(alice, nginx, sogo, dovecot):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        user_mail_insert=INSERT,
    )
    client = phone(nginx, "INTEROPNEW1")
    provision_as_sogo_allows(client)  # Provision passes to SOGo even while quarantined
    assert state("INTEROPNEW1") == ("Quarantined", "Global")

    inbox = inbox_of(client)  # ECP's one-folder mailbox
    notice, notice_key = sync_until(client, inbox.id, lambda f: "Email.Subject" in f)
    assert "waiting for approval" in notice["Email.Subject"]
    assert INSERT in notice["AirSyncBase.Data"]
    assert client.get_item_estimate(inbox.id, notice_key) == 0
    assert client.ping(inbox.id, heartbeat=60).status == "1"  # held by ECP, then "no changes"

    actions.allow_device(ADMIN, alice, "INTEROPNEW1")
    assert state("INTEROPNEW1") == ("Allowed", "Individual")
    # Now SOGo answers: its own folders, and ECP's sync key is unknown there
    # ("invalid sync key"), so the phone starts its Inbox again from 0.
    # The gate's decision cache lets the Allow through within ECP_DECISION_CACHE_SECONDS,
    # in each of the two workers on its own (this ECP has no shared cache to hear the
    # change from): until then one worker may still answer with ECP's folder while the
    # other passes to SOGo, and a real phone would be told Status 12, "FolderSync
    # again". Wait out the bound; then every answer is SOGo's.
    time.sleep(DECISION_CACHE_SECONDS + 0.5)
    real_inbox = inbox_of(client)
    assert real_inbox.id != inbox.id and real_inbox.id.startswith("mail")
    with pytest.raises(pyactivesync.StatusError) as refused:
        client.sync_folder(real_inbox.id, notice_key)
    assert refused.value.code == "3"
    key = client.sync_folder(real_inbox.id, "0").sync_key  # SOGo's own first key
    assert key

    subject = "Quarterly figures, delivered by Dovecot"
    deliver(dovecot, subject)
    # The estimate makes SOGo enable QRESYNC on the Inbox (see the module docstring).
    assert client.get_item_estimate(real_inbox.id, key) >= 1
    result = client.sync_folder(real_inbox.id, key)
    assert subject in [item.fields.get("Email.Subject") for item in result.added]
    assert result.sync_key != key


def test_a_blocked_phone_gets_status_129(alice, nginx, sogo):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    client = phone(nginx, "INTEROPBLOCKED")
    with pytest.raises(pyactivesync.StatusError) as blocked:
        client.provision()
    assert blocked.value.code == "129"
    client._provisioned = True
    with pytest.raises(pyactivesync.StatusError) as blocked:
        client.list_folders()
    assert blocked.value.code == "129"
    assert state("INTEROPBLOCKED") == ("Blocked", "Global")


def test_an_existing_phone_is_allowed_from_its_user_agent(alice, nginx, sogo):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")  # discovery: 15 minutes
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="iPhone14C5", access_level="Allow"
    )
    # Set up before ECP: it never provisions again, it only syncs.
    client = phone(nginx, "INTEROPOLD1", user_agent="Apple-iPhone14C5/2006.1")
    client._provisioned = True
    inbox = inbox_of(client)
    assert inbox.id.startswith("mail")  # SOGo's Inbox, not ECP's notice folder
    assert state("INTEROPOLD1") == ("Allowed", "DeviceRule")
    assert MobileDevice.objects.get(device_id="INTEROPOLD1").device_model == "iPhone14C5"
