"""A real OpenLDAP slapd for the tests and the directory benchmark (issue 14).

    from tests.ldap_support import slapd_fixture  # noqa: F401  (the fixture "slapd")

    def test_something(slapd, settings):
        slapd.add_user("erin", "erin-pw", mail="erin@example.org")
        for name, value in slapd.env().items():  # AUTH_LDAP_SERVER_URI, ..._BIND_DN, ...
            setattr(settings, name, value)
        ...

(or `pytest_plugins = ["tests.ldap_support"]` in tests/conftest.py, for every test).

`Slapd` is Debian's own slapd (no mock), run in the foreground on a free
loopback port with a throwaway slapd.conf and an MDB database in a temporary
directory; its log (`-d stats`: every connection and operation) is slapd/slapd.log
there, and `operations()` / `binds()` read it. The tree is loaded with slapadd
before the server starts (20,000 users and 500 groups in about a second), and
changed while it runs through python-ldap, bound as the rootdn. `stop()` then
`start()` brings the same data back on the same port (the "directory down"
tests: python-ldap raises SERVER_DOWN at once); `freeze()` / `thaw()` stop and
continue the process (SIGSTOP), so that connections are accepted and never
answered (the "directory not answering" tests: only OPT_TIMEOUT bounds a bind
then, OPT_NETWORK_TIMEOUT alone waits for ever).

The tree:

    <suffix>                       dcObject + organization
      cn=admin                     the rootdn (not an entry; no limits, no ACLs)
      cn=reader                    a service account: reads everything but passwords,
                                   under the size limit (500 entries unpaged, like AD's
                                   MaxPageSize 1000) and pages without limit
      ou=people                    users: inetOrgPerson, uid=<uid>
      ou=groups                    groups: groupOfNames, cn=<cn>, member: <user DN>

A user's password is stored as {SSHA} (salted SHA-1, what slappasswd makes)
in userPassword, so a simple bind as the user's DN checks it. Anonymous binds
may bind (to authenticate) but read nothing. A disabled user has
`employeeType: disabled`: slapd itself still lets them bind, as a directory
with a "disabled" attribute does; refusing them is ECP's job.
"""

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import ldap
import ldap.dn
import ldap.filter
import ldap.modlist
import pytest
from ldap.controls import SimplePagedResultsControl

from tests.integration.test_faults_support import _die_with_this_process, eventually, free_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
WAIT = 20  # seconds: the bound on every wait
SIZE_LIMIT = 500  # entries per unpaged search, for every bind but the rootdn
DISABLED = "disabled"  # employeeType of a disabled user
_OPERATION = re.compile(
    r" conn=\d+ op=\d+ (?P<verb>BIND|SRCH|ADD|MOD|DEL|MODRDN|CMP|EXT) (?P<rest>.*)"
)
_BIND_DN = re.compile(r'dn="(?P<dn>[^"]*)"')


def available() -> bool:
    return (
        bool(shutil.which("slapd") or Path("/usr/sbin/slapd").exists()) and Path(SLAPADD).exists()
    )


# --- LDIF ----------------------------------------------------------------------------------


def ssha(password: str, salt: bytes | None = None) -> str:
    """userPassword in slapd's {SSHA} scheme: base64(sha1(password + salt) + salt)."""
    salt = os.urandom(8) if salt is None else salt
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - the LDAP scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _value(value: str) -> str:
    """One LDIF value: plain when safe, base64 (`::`) otherwise (RFC 2849)."""
    safe = (
        value.isascii()
        and value.isprintable()
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )
    return f" {value}" if safe else ": " + base64.b64encode(value.encode()).decode()


def ldif_entry(dn: str, attrs: dict) -> str:
    lines = [f"dn:{_value(dn)}"]
    for name, values in attrs.items():
        for value in [values] if isinstance(values, str) else values:
            lines.append(f"{name}:{_value(value)}")
    return "\n".join(lines) + "\n\n"


def user_attrs(
    uid: str,
    password: str | None,
    *,
    mail: str | None = None,
    display_name: str | None = None,
    disabled: bool = False,
    language: str | None = None,
    hashed: bool = True,
) -> dict:
    attrs = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": uid,
        "cn": display_name or uid,
        "sn": (display_name or uid).split()[-1],
    }
    if mail:
        attrs["mail"] = mail
    if display_name:
        attrs["displayName"] = display_name
    if password is not None:
        attrs["userPassword"] = ssha(password) if hashed else password
    if disabled:
        attrs["employeeType"] = DISABLED
    if language:
        attrs["preferredLanguage"] = language
    return attrs


def group_attrs(cn: str, member_dns: list[str]) -> dict:
    if not member_dns:
        raise ValueError(f"group {cn!r}: groupOfNames needs at least one member")
    return {"objectClass": ["top", "groupOfNames"], "cn": cn, "member": list(member_dns)}


def base_ldif(suffix: str, reader_password: str) -> str:
    """The suffix entry, the reader service account and the two organizational units."""
    first = suffix.split(",")[0]
    kind, name = first.split("=", 1)
    top = {"objectClass": ["top", "dcObject", "organization"], "dc": name, "o": name}
    if kind.lower() != "dc":
        top = {"objectClass": ["top", "organization"], "o": name}
    return "".join(
        [
            ldif_entry(suffix, top),
            ldif_entry(
                f"cn=reader,{suffix}",
                {
                    "objectClass": ["top", "organizationalRole", "simpleSecurityObject"],
                    "cn": "reader",
                    "userPassword": ssha(reader_password),
                },
            ),
            ldif_entry(
                f"ou=people,{suffix}", {"objectClass": "organizationalUnit", "ou": "people"}
            ),
            ldif_entry(
                f"ou=groups,{suffix}", {"objectClass": "organizationalUnit", "ou": "groups"}
            ),
        ]
    )


def seed_uid(n: int) -> str:
    return f"user{n:05d}"


def seed_password(n: int) -> str:
    return f"pw-{seed_uid(n)}"


def seed_memberships(users: int, groups: int) -> list[list[int]]:
    """For each group (0-based), the users (1-based) in it: every user in 1 to 3 groups
    (a third each), every group with at least one member; deterministic."""
    members = [[] for _ in range(groups)]
    if not groups:
        return members
    for n in range(1, users + 1):
        chosen = [(n - 1) % groups]
        for step, salt in ((7, 1), (13, 2))[: (n - 1) % 3]:
            candidate = (n * step + salt) % groups
            if candidate not in chosen:
                chosen.append(candidate)
        for g in chosen:
            members[g].append(n)
    return members


def seed_ldif(
    users: int,
    groups: int,
    *,
    suffix: str = "dc=example,dc=org",
    password: str | None = None,
    domain: str = "example.org",
    disabled_every: int = 0,
    hashed: bool = True,
) -> str:
    """LDIF of `users` users and `groups` groups under ou=people / ou=groups of `suffix`
    (not the base entries: Slapd adds those).

    User n (1-based): uid user{n:05d}, mail user{n:05d}@<domain>, displayName
    "User {n:05d}", password `password` for all, or "pw-user{n:05d}" each (None);
    every `disabled_every`-th user disabled (0: none). Groups are group{g:03d}
    (1-based), each user in 1 to 3 of them (seed_memberships)."""
    if groups and not users:
        raise ValueError("groups need at least one user (groupOfNames needs a member)")
    people, teams = f"ou=people,{suffix}", f"ou=groups,{suffix}"
    # One shared password is hashed once: hashing is most of the cost at 20,000 users.
    shared = ssha(password) if (password is not None and hashed) else password
    parts = []
    for n in range(1, users + 1):
        uid = seed_uid(n)
        attrs = user_attrs(
            uid,
            None,
            mail=f"{uid}@{domain}",
            display_name=f"User {n:05d}",
            disabled=bool(disabled_every) and n % disabled_every == 0,
        )
        if password is not None:
            attrs["userPassword"] = shared
        else:
            attrs["userPassword"] = ssha(seed_password(n)) if hashed else seed_password(n)
        parts.append(ldif_entry(f"uid={uid},{people}", attrs))
    for g, member_ns in enumerate(seed_memberships(users, groups)):
        dns = [f"uid={seed_uid(n)},{people}" for n in member_ns]
        parts.append(
            ldif_entry(f"cn=group{g + 1:03d},{teams}", group_attrs(f"group{g + 1:03d}", dns))
        )
    return "".join(parts)


# The fixture's tree.
DEFAULT_USERS = {
    "alice": {"password": "alice-pw", "mail": "alice@example.org", "display_name": "Alice Example"},
    "bob": {"password": "bob-pw", "mail": "bob@example.org", "display_name": "Bob Example"},
    "carol": {
        "password": "carol-pw",
        "mail": "carol@example.org",
        "display_name": "Carol Example",
        "disabled": True,
    },
    "dave": {"password": "dave-pw", "display_name": "Dave Example"},  # no mail attribute
}
DEFAULT_GROUPS = {"ecp-admins": ["alice"], "ecp-helpdesk": ["bob"], "sales": ["bob", "dave"]}


def default_ldif(suffix: str = "dc=example,dc=org") -> str:
    people, teams = f"ou=people,{suffix}", f"ou=groups,{suffix}"
    parts = [
        ldif_entry(f"uid={uid},{people}", user_attrs(uid, **spec))
        for uid, spec in DEFAULT_USERS.items()
    ]
    parts += [
        ldif_entry(f"cn={cn},{teams}", group_attrs(cn, [f"uid={u},{people}" for u in uids]))
        for cn, uids in DEFAULT_GROUPS.items()
    ]
    return "".join(parts)


# --- the server ------------------------------------------------------------------------------


class Slapd:
    """Debian's slapd on 127.0.0.1:<free port>, its config and data under `tmp_path`."""

    def __init__(
        self,
        tmp_path: Path,
        suffix: str = "dc=example,dc=org",
        *,
        seed: str = "",
        bind_password: str = "admin-secret",
        reader_password: str = "reader-secret",
        size_limit: int | None = SIZE_LIMIT,
        port: int | None = None,
    ):
        self.dir = Path(tmp_path) / "slapd"
        self.data = self.dir / "data"
        self.conf = self.dir / "slapd.conf"
        self.log = self.dir / "slapd.log"
        self.suffix = suffix
        self.bind_dn, self.bind_password = f"cn=admin,{suffix}", bind_password
        self.reader_dn, self.reader_password = f"cn=reader,{suffix}", reader_password
        self.users_base, self.groups_base = f"ou=people,{suffix}", f"ou=groups,{suffix}"
        self.size_limit = size_limit
        self.port = port or free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.seed = seed
        self.process: subprocess.Popen | None = None
        self.loaded = False
        self.frozen = False
        self.seed_seconds: float | None = None  # slapadd's time, once loaded

    # -- config and data

    def config(self) -> str:
        schemas = "".join(
            f"include {SCHEMA / name}.schema\n"
            for name in ("core", "cosine", "inetorgperson", "nis")
        )
        limit = (
            f"sizelimit size.soft={self.size_limit} size.hard={self.size_limit} "
            "size.prtotal=unlimited\n"
            if self.size_limit
            else "sizelimit unlimited\n"
        )
        return (
            f"{schemas}"
            f"pidfile {self.dir / 'slapd.pid'}\n"
            f"argsfile {self.dir / 'slapd.args'}\n"
            "loglevel none\n"
            f"modulepath {MODULES}\n"
            "moduleload back_mdb\n"
            f"{limit}"
            "database mdb\n"
            # MDB's default map is 10 MiB: 20,000 users with their indexes need more.
            "maxsize 1073741824\n"
            f'suffix "{self.suffix}"\n'
            f'rootdn "{self.bind_dn}"\n'
            f"rootpw {ssha(self.bind_password)}\n"
            f"directory {self.data}\n"
            "index objectClass eq\n"
            "index uid,mail,cn eq,sub\n"
            "index member eq\n"
            "index employeeType eq\n"
            # Passwords: checked at bind, never read; the rest: read by any bound DN.
            "access to attrs=userPassword\n"
            "    by self write\n"
            "    by anonymous auth\n"
            "    by * none\n"
            "access to *\n"
            "    by users read\n"
            "    by anonymous auth\n"
        )

    def load(self) -> float:
        """slapadd the base entries and the seed into an empty database (before start)."""
        assert not self.loaded, "the tree is loaded once; change it with add_user() etc."
        self.data.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config())
        ldif = self.dir / "seed.ldif"
        ldif.write_text(base_ldif(self.suffix, self.reader_password) + self.seed)
        started = time.monotonic()
        done = subprocess.run(
            [SLAPADD, "-q", "-f", str(self.conf), "-l", str(ldif)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"slapadd failed: {done.stdout}\n{done.stderr}"
        self.seed_seconds = time.monotonic() - started
        self.loaded = True
        return self.seed_seconds

    # -- the process

    def start(self) -> "Slapd":
        if self.alive():
            return self
        if not self.loaded:
            self.load()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [SLAPD, "-h", f"{self.uri}/", "-f", str(self.conf), "-d", "stats"],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_this_process,
            )
        eventually(self._answers, f"slapd on {self.uri}", on_timeout=self.tail)
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"slapd exited with {self.process.returncode}\n{self.tail()}")
        try:
            conn = self.connect(timeout=1)
            conn.simple_bind_s(self.bind_dn, self.bind_password)
            conn.unbind_s()
            return True
        except ldap.LDAPError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, as `systemctl stop slapd`: the data stays for the next start()."""
        if not self.alive():
            return
        self.thaw()
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def freeze(self) -> None:
        """SIGSTOP: the port accepts connections (the kernel does) and nothing answers."""
        if self.alive() and not self.frozen:
            self.process.send_signal(signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.alive() and self.frozen:
            self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "--- slapd log ---\n" + "\n".join(text.splitlines()[-lines:])

    def operations(self) -> list[tuple[str, str]]:
        """Every operation slapd has logged (`-d stats`, in order): ("BIND", 'dn="uid=..."
        method=128'), ("SRCH", 'base="..." scope=2 deref=0 filter="(uid=alice)"'), ADD, MOD,
        DEL, ... To assert that something made no directory round trip: compare before and
        after (the harness's own changes bind as the rootdn)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = _OPERATION.search(line)
            if match and not (match["verb"] == "BIND" and "method=" not in match["rest"]):
                found.append((match["verb"], match["rest"]))
        return found

    def binds(self) -> list[str]:
        """The DNs of every bind so far (the rootdn's included), in order."""
        return [_BIND_DN.match(rest)["dn"] for verb, rest in self.operations() if verb == "BIND"]

    def __enter__(self) -> "Slapd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- connections

    def connect(self, timeout: float = 5) -> "ldap.ldapobject.LDAPObject":
        """A new, unbound connection with bounded waits."""
        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
        conn.set_option(ldap.OPT_TIMEOUT, timeout)
        return conn

    @contextlib.contextmanager
    def admin(self):
        """A connection bound as the rootdn, closed afterwards."""
        conn = self.connect()
        conn.simple_bind_s(self.bind_dn, self.bind_password)
        try:
            yield conn
        finally:
            conn.unbind_s()

    def bind(self, dn: str, password: str) -> bool:
        """Whether a simple bind as dn with password succeeds (False: invalid credentials)."""
        conn = self.connect()
        try:
            conn.simple_bind_s(dn, password)
            return True
        except ldap.INVALID_CREDENTIALS:
            return False
        finally:
            conn.unbind_s()

    def search(self, base: str, filterstr: str = "(objectClass=*)", attrs=None, *, page=500):
        """Every matching (dn, attrs) as the rootdn, with the paged-results control; attribute
        values decoded."""
        with self.admin() as conn:
            return [(dn, _decoded(a)) for dn, a in paged_search(conn, base, filterstr, attrs, page)]

    def env(self, *, reader: bool = False) -> dict[str, str]:
        """The settings for this server (environment variables, or settings through
        ecp.ldap_config.ldap_settings(env)): django-auth-ldap's, bound as the rootdn or as
        the size-limited reader service account, and ECP's disabled-user marker."""
        return {
            "AUTH_LDAP_SERVER_URI": self.uri,
            "AUTH_LDAP_BIND_DN": self.reader_dn if reader else self.bind_dn,
            "AUTH_LDAP_BIND_PASSWORD": self.reader_password if reader else self.bind_password,
            "AUTH_LDAP_USER_SEARCH_BASE": self.users_base,
            "AUTH_LDAP_GROUP_SEARCH_BASE": self.groups_base,
            # ECP's own: how this tree marks a disabled user (not AD's userAccountControl).
            "ECP_LDAP_DISABLED_ATTRIBUTE": "employeeType",
            "ECP_LDAP_DISABLED_VALUE": DISABLED,
        }

    # -- names

    def user_dn(self, uid: str) -> str:
        return f"uid={ldap.dn.escape_dn_chars(uid)},{self.users_base}"

    def group_dn(self, cn: str) -> str:
        return f"cn={ldap.dn.escape_dn_chars(cn)},{self.groups_base}"

    # -- changes while it runs

    def _add(self, dn: str, attrs: dict) -> str:
        entry = {
            k: [v.encode() for v in ([vs] if isinstance(vs, str) else vs)]
            for k, vs in attrs.items()
        }
        with self.admin() as conn:
            conn.add_s(dn, ldap.modlist.addModlist(entry))
        return dn

    def add_user(
        self,
        uid: str,
        password: str | None,
        *,
        mail: str | None = None,
        display_name: str | None = None,
        disabled: bool = False,
        language: str | None = None,
    ) -> str:
        attrs = user_attrs(
            uid,
            password,
            mail=mail,
            display_name=display_name,
            disabled=disabled,
            language=language,
        )
        return self._add(self.user_dn(uid), attrs)

    def modify(self, dn: str, attr: str, values) -> None:
        """Replace attr's values (a str or a list); None or [] removes the attribute."""
        if isinstance(values, str):
            values = [values]
        with self.admin() as conn:
            if values:
                conn.modify_s(dn, [(ldap.MOD_REPLACE, attr, [v.encode() for v in values])])
            else:
                with contextlib.suppress(ldap.NO_SUCH_ATTRIBUTE):
                    conn.modify_s(dn, [(ldap.MOD_DELETE, attr, None)])

    def set_disabled(self, uid: str, disabled: bool = True) -> None:
        self.modify(self.user_dn(uid), "employeeType", DISABLED if disabled else None)

    def set_password(self, uid: str, password: str) -> None:
        self.modify(self.user_dn(uid), "userPassword", ssha(password))

    def delete_user(self, uid: str, *, keep_memberships: bool = False) -> None:
        """Delete the entry and (unless keep_memberships) its member values in the groups, as
        AD and slapd's refint overlay do; a group left without members keeps the dangling
        DN (groupOfNames needs one)."""
        dn = self.user_dn(uid)
        with self.admin() as conn:
            conn.delete_s(dn)
            if keep_memberships:
                return
            filterstr = f"(member={ldap.filter.escape_filter_chars(dn)})"
            for group_dn, attrs in paged_search(conn, self.groups_base, filterstr, ["member"]):
                if len(attrs.get("member", [])) > 1:
                    conn.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [dn.encode()])])

    def add_group(self, cn: str, member_uids) -> str:
        return self._add(self.group_dn(cn), group_attrs(cn, [self.user_dn(u) for u in member_uids]))

    def add_member(self, cn: str, uid: str) -> None:
        with self.admin() as conn:
            conn.modify_s(
                self.group_dn(cn), [(ldap.MOD_ADD, "member", [self.user_dn(uid).encode()])]
            )

    def remove_member(self, cn: str, uid: str) -> None:
        """ldap.OBJECT_CLASS_VIOLATION for a group's last member (groupOfNames needs one)."""
        with self.admin() as conn:
            conn.modify_s(
                self.group_dn(cn), [(ldap.MOD_DELETE, "member", [self.user_dn(uid).encode()])]
            )

    def delete_group(self, cn: str) -> None:
        with self.admin() as conn:
            conn.delete_s(self.group_dn(cn))


def _decoded(attrs: dict) -> dict:
    return {k: [v.decode(errors="replace") for v in vs] for k, vs in attrs.items()}


def paged_search(conn, base, filterstr="(objectClass=*)", attrs=None, page=500):
    """Yield every (dn, raw attrs) of a subtree search, `page` entries at a time (RFC 2696)."""
    control = SimplePagedResultsControl(True, size=page, cookie="")
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, filterstr, attrs, serverctrls=[control])
        _, results, _, controls = conn.result3(msgid)
        for dn, entry in results:
            if dn is not None:  # not a search reference
                yield dn, entry
        cookies = [
            c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType
        ]
        if not cookies or not cookies[0]:
            return
        control.cookie = cookies[0]


# --- the fixture -----------------------------------------------------------------------------


@pytest.fixture(name="slapd")
def slapd_fixture(tmp_path):
    """A started slapd with the default tree (DEFAULT_USERS, DEFAULT_GROUPS), stopped after
    the test: alice (alice@example.org, "Alice Example", alice-pw), bob (bob@example.org,
    bob-pw), carol (disabled, carol-pw), dave (no mail, dave-pw); groups ecp-admins
    (alice), ecp-helpdesk (bob), sales (bob, dave)."""
    from tests.conftest import need_service

    need_service("slapd", available(), "install Debian's slapd package (and ldap-utils)")
    server = Slapd(tmp_path, seed=default_ldif())
    server.start()
    try:
        yield server
    finally:
        server.stop()
