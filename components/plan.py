"""The HA stack as data: every remote step with its node, scripts, dependencies and replacement keys.

Pure: no Pulumi import. The components turn each `Step` into a `remote.Command`; the offline verifier applies the
very same CIB scripts to a CIB file with `pcs -f`. Every create script is safe to run twice (check, then act) and
every delete undoes its create and does nothing when there is nothing to undo.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from . import pcs
from .fencing import (
    FENCE_DIR,
    PASSWORD_FILE,
    PASSWORD_SCRIPT,
    SSH_KEY_FILE,
    XVM_KEY_FILE,
    FenceDevice,
    FenceSecret,
    fence_devices,
    secret_for,
)
from .pcs import Op, Primitive
from .settings import Node, Settings

HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_DIST = "/etc/haproxy/haproxy.cfg.dist"
NONLOCAL_BIND_DROPIN = "/etc/systemd/system/haproxy.service.d/50-ha-lb-nonlocal-bind.conf"
# Sorts after Pacemaker's own drop-in (/run/systemd/system/haproxy.service.d/50-pacemaker.conf, `Restart=no`), so
# this one's Restart= wins: systemd restarts a HAProxy that died at once, while Pacemaker's monitor sees the unit
# "activating" (pending, no failure). Pacemaker's own recovery of a systemd resource takes >= 2 s in 2.1.5 (its
# start and stop are confirmed by a monitor 2 s later: docs/research-haproxy-failure.md). A stop Pacemaker asks
# for is never undone (systemd does not restart a unit stopped on purpose); a crash loop hits the start limit and
# fails the unit, which Pacemaker then sees and handles as before.
RESTART_DROPIN = "/etc/systemd/system/haproxy.service.d/60-ha-lb-restart.conf"
RESTART_DROPIN_LINES = (
    "[Unit]",
    "StartLimitIntervalSec=10s",
    "StartLimitBurst=5",
    "[Service]",
    "Restart=always",
    "RestartSec=0",
)
COROSYNC_CONF = "/etc/corosync/corosync.conf"
_QDEVICE_IN_CONF = f"grep -Eq '^[[:space:]]*model:[[:space:]]*net' {COROSYNC_CONF} 2>/dev/null"
CIB_XML = "/var/lib/pacemaker/cib/cib.xml"
CLUSTER_START_WAIT_S = 600
VIP_ID = "vip"
HAPROXY_ID = "haproxy"


class StepKind(StrEnum):
    """What a step needs to run, which is what decides where the offline verifier can run it."""

    WAIT = "wait"  # waits for a node to be ready; nothing to undo
    NODE = "node"  # files and users on one node
    AUTH = "auth"  # pcsd authentication between live nodes
    CLUSTER = "cluster"  # corosync membership and config on live nodes
    CIB = "cib"  # an edit of the cluster configuration: runs offline with `pcs -f`
    CHECK = "check"  # asks a live system (a fence device's power status); changes nothing
    MEMBERSHIP = "membership"  # changes who is in the running cluster, or its corosync.conf: waits its turn (the
    # mark), takes the lock itself


class Stdin(StrEnum):
    """The secret a step reads on stdin (never on its command line or in its environment)."""

    HACLUSTER_PASSWORD = "haclusterPassword"
    HAPROXY_CFG = "haproxyCfg"
    FENCE_SECRET = "fenceSecret"


GOES_WITH_ITS_OWNER = "<its owner>"
"""A node's step goes with the node's VM; a cluster-wide step with the cluster itself (`pulumi destroy`), never
with the VM of the node it runs on: Pulumi (3.260+) replaces what is deleted with a replaced resource, so a new VM
for the first node would otherwise re-create every cluster-wide step."""


@dataclass(frozen=True)
class Step:
    id: str
    """Unique; the Pulumi resource name is derived from it."""
    node: str
    """The node the step runs on."""
    kind: StepKind
    create: str
    """Bash body of the create script (see `render_script`)."""
    delete: str | None
    depends_on: tuple[str, ...] = ()
    stdin: Stdin | None = None
    replace_on: tuple[str, ...] = ()
    """Values whose change means delete-then-create rather than running `create` again."""
    owner: str = "cluster"
    """Which component declares it: "cluster", "vip" or "node"."""
    about: tuple[str, ...] = ()
    """Nodes whose new VM (a replaced domain) means this step runs afresh: it is replaced with them."""
    on_running_cluster: bool = False
    """Runs against the running cluster (every CIB step is): when its node's VM was replaced in the same `up`, its
    create waits until the new VM has joined rather than failing on a blank node. Not its delete: `pulumi destroy`
    must not wait for a cluster that may be gone."""
    goes_with: str | None = GOES_WITH_ITS_OWNER
    """What makes the delete moot, so Pulumi skips it (`deleted_with`): see `GOES_WITH_ITS_OWNER` (the default),
    another step (by id), or None (nothing). Also what the step's registration waits for."""


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate step ids in plan: {ids}")
        seen: set[str] = set()
        for s in self.steps:
            missing = [d for d in s.depends_on if d not in seen]
            if missing:
                raise ValueError(f"step {s.id} depends on {missing}, which do not come before it")
            seen.add(s.id)

    def get(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def of_kind(self, *kinds: StepKind) -> list[Step]:
        return [s for s in self.steps if s.kind in kinds]


def q(argv: Sequence[str]) -> str:
    """Quote an argv for bash: the one place values meet a shell."""
    return shlex.join(argv)


# Where the cluster steps queue: pcs edits the CIB and corosync.conf by reading, changing and replacing them whole,
# so two steps at once (Pulumi runs steps with shared dependencies concurrently) lose one's change while both exit 0.
# In a root-only directory: /run/lock is world-writable, where any local user could take (or plant) the lock.
CLUSTER_LOCK_DIR = "/run/ha-lb"
CLUSTER_LOCK = f"{CLUSTER_LOCK_DIR}/cluster.lock"
CLUSTER_LOCK_WAIT_S = 1800


def _lock_prelude() -> str:
    # flock holds until the script exits (fd 9 stays open; pcs starts its children with close_fds), whatever it
    # exits with; a killed holder frees it.
    return (
        f'lock="${{HA_LB_CLUSTER_LOCK:-{CLUSTER_LOCK}}}"\n'
        'install -d -m 0700 "${lock%/*}"\n'
        'exec 9>>"$lock"\n'
        f"if ! flock -w {CLUSTER_LOCK_WAIT_S} 9; then\n"
        '  echo "ha-lb: step $ha_lb_step on node $ha_lb_node: another cluster step held the lock for '
        f'{CLUSTER_LOCK_WAIT_S} s" >&2; exit 1\n'
        "fi\n"
    )


_LOCKED_KINDS = frozenset({StepKind.AUTH, StepKind.CLUSTER, StepKind.CIB})


CLUSTER_STOPPED_S = 120
"""How long a node with a corosync.conf may have Pacemaker stopped before a step waiting for it fails: a joining
node is started within seconds of getting its corosync.conf; a cluster stopped by hand is an error to report."""


def _joined_prelude() -> str:
    # A node's VM replaced in this `up` comes back blank; its member step (on another node) joins it, and nothing in
    # Pulumi orders a cluster-wide step after that (the join must not wait on other nodes' VMs). Online as
    # Pacemaker sees it: by then the node has the cluster's CIB, which pcs reads locally.
    online = '<node name=\\"$ha_lb_node\\" [^>]*online=\\"true\\"'
    return (
        # Read whole, then matched: piped into `grep -q`, crm_mon dies of SIGPIPE once grep has its match and the
        # output is longer than one write (a few resources), and pipefail made that a miss and 2 s of sleep.
        "online_now() { local xml; xml=$(crm_mon -1 --output-as=xml 2>/dev/null) || return 1\n"
        f'  grep -Eq "{online}" <<<"$xml"; }}\n'
        f"deadline=$((SECONDS + {MEMBERSHIP_WAIT_S})); stopped=0\n"
        "until online_now; do\n"
        '  [ "$stopped" -gt 0 ] || [ -n "${told:-}" ] || { told=1; echo "ha-lb: $ha_lb_step waits for $ha_lb_node '
        'to be an online cluster member"; }\n'
        f"  if [ -f {COROSYNC_CONF} ] && ! systemctl is-active -q pacemaker; then stopped=$((stopped + 2)); "
        "else stopped=0; fi\n"
        f'  if [ "$stopped" -ge {CLUSTER_STOPPED_S} ]; then\n'
        '    echo "ha-lb: step $ha_lb_step: the cluster is stopped on $ha_lb_node (pcs cluster start)" >&2; exit 1\n'
        '  elif [ "$SECONDS" -ge "$deadline" ]; then\n'
        '    echo "ha-lb: step $ha_lb_step: $ha_lb_node does not run the cluster (a new VM not joined yet?)" >&2\n'
        "    exit 1\n"
        "  fi\n"
        "  sleep 2\n"
        "done\n"
    )


def _cib_has(undo: bool) -> str:
    """`cib_has XPATH`: whether the CIB holds a match. 105 is cibadmin's "no match"; a CIB that cannot be read is an
    error, not an absence. Taken for "not there", it would skip starting a held VIP or lifting HAProxy's stop, and a
    create would pass with the service down; an undo would pass with a node's fence device left behind. Only an undo
    on a node with no cluster at all (no corosync.conf) takes it for "nothing to undo"."""
    no_cluster = f"  if [ ! -f {COROSYNC_CONF} ]; then return 1; fi\n" if undo else ""
    return (
        'cib_has() { local rc=0; cibadmin --query --xpath "$1" >/dev/null 2>&1 || rc=$?\n'
        '  case "$rc" in 0) return 0 ;; 105) return 1 ;; esac\n'
        f"{no_cluster}"
        '  echo "ha-lb: step $ha_lb_step on node $ha_lb_node: cannot read the CIB (cibadmin exit $rc)" >&2; exit 1; }\n'
    )


def render_script(step: Step, body: str | None = None, *, creating: bool = False) -> str:
    """The full bash script of a step: strict mode, an error line naming step, node and command, the cluster lock
    for steps that change cluster-wide files, then the body. `creating`: the script Pulumi runs to create or update
    the step, which waits for a running cluster first where the step needs one."""
    text = step.create if body is None else body
    prelude = (
        "set -euo pipefail\n"
        f"ha_lb_step={shlex.quote(step.id)} ha_lb_node={shlex.quote(step.node)}\n"
        "trap 'echo \"ha-lb: step $ha_lb_step on node $ha_lb_node failed (exit $?) at: $BASH_COMMAND\" >&2' ERR\n"
        + _cib_has(undo=not creating)
    )
    if creating and (step.on_running_cluster or step.kind is StepKind.CIB):
        prelude += _joined_prelude()
    if step.kind in _LOCKED_KINDS:
        prelude += _lock_prelude()
    return prelude + text


def remote_command(script: str, user: str) -> str:
    """The command line `remote.Command` runs: the script under bash, through sudo unless the user is root."""
    argv = ["/bin/bash", "-c", script]
    return q(argv if user == "root" else ["sudo", "-n", *argv])


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- script builders -------------------------------------------------------------------------------------------


def _predicates(attrs: dict[str, str]) -> str:
    return "".join(f"[@{k}='{v}']" for k, v in attrs.items())


def _xpath_attrs(element: str, attrs: dict[str, str]) -> str:
    return f"//{element}{_predicates(attrs)}"


def ensure_primitive(p: Primitive, disabled: bool = False, held: bool = False) -> str:
    """Create the resource, or update it when its fingerprint differs; a matching fingerprint changes nothing.
    `disabled`: created stopped (an existing one is left as it is). `held`: created stopped and marked, for the same
    step to add what must exist before it first starts, then `release_held`.

    A fencing device is replaced instead: `pcs stonith update` keeps parameters the new definition no longer has, and
    cannot change the agent. A device has no state to keep; its constraints are added again by the same step."""
    spec = fingerprint(pcs.primitive_create(p))
    tagged = replace(p, meta={**p.meta, pcs.SPEC_META: spec})
    current = _spec_xpath(p)
    created = replace(tagged, meta={**tagged.meta, HELD_META: "true"}) if held else tagged
    # cibadmin, not `pcs resource config`: the same answer without a pcs start (0.4-1 s, under the lock).
    exists = f"cib_has {shlex.quote(_primitive_xpath(p.id))}"
    if p.stonith:
        return (
            f"if ! cib_has {shlex.quote(current)}; then\n"
            f"  if {exists}; then {q(pcs.resource_delete(p.id, p.stonith))}; fi\n"
            f"  {q(pcs.primitive_create(tagged, disabled))}\n"
            "fi\n"
        )
    return (
        f"if cib_has {shlex.quote(current)}; then\n"
        f"  echo {shlex.quote(p.id + ': up to date')}\n"
        f"elif {exists}; then\n"
        f"  {q(pcs.primitive_update(p))}\n"
        f"  {q(pcs.resource_meta(p.id, tagged.meta))}\n"
        "else\n"
        f"  {q(pcs.primitive_create(created, disabled or held))}\n"
        "fi\n"
    )


HELD_META = "ha-lb-held"
"""Marks a resource created stopped until its step has added what must come first: a re-run of a step that failed
in between still starts it, and a resource stopped by hand (no mark) stays stopped."""


def _meta_xpath(resource_id: str) -> str:
    return f"{_primitive_xpath(resource_id)}/meta_attributes/nvpair"


def held_xpath(resource_id: str) -> str:
    return f"{_meta_xpath(resource_id)}[@name='{HELD_META}']"


def release_held(resource_id: str) -> str:
    """Start a resource created `held`: its stop and its mark go in one CIB update."""
    both = f"{_meta_xpath(resource_id)}[@name='{HELD_META}' or @name='target-role']"
    held = shlex.quote(held_xpath(resource_id))
    return f"if cib_has {held}; then cibadmin --delete-all --force --xpath {shlex.quote(both)}; fi\n"


def _primitive_xpath(resource_id: str) -> str:
    return f"//primitive[@id='{resource_id}']"


def remove_primitive(p: Primitive) -> str:
    return f"if cib_has {shlex.quote(_primitive_xpath(p.id))}; then\n  {q(pcs.resource_delete(p.id, p.stonith))}\nfi\n"


@dataclass(frozen=True)
class Rule:
    """A constraint's rule with one expression, as the CIB holds them."""

    attrs: dict[str, str]
    expression: dict[str, str]


@dataclass(frozen=True)
class Constraint:
    element: str
    """CIB element: rsc_location, rsc_colocation, rsc_order."""
    attrs: dict[str, str]
    """Its attributes as the CIB holds them (the id among them)."""
    rule: Rule | None = None

    @property
    def id(self) -> str:
        return self.attrs["id"]

    @property
    def xpath(self) -> str:
        """Matches the constraint only as defined: another with its id but other content does not."""
        path = _xpath_attrs(self.element, self.attrs)
        if self.rule is not None:
            # Exactly this rule: one more rule or expression beside it is a change.
            path += f"[count(rule)=1][count(rule/*)=1][rule{_predicates(self.rule.attrs)}"
            path += f"/expression{_predicates(self.rule.expression)}]"
        return path

    @property
    def xml(self) -> str:
        element = ET.Element(self.element, self.attrs)
        if self.rule is not None:
            ET.SubElement(ET.SubElement(element, "rule", self.rule.attrs), "expression", self.rule.expression)
        return ET.tostring(element, encoding="unicode")


def ensure_constraint(c: Constraint) -> str:
    """Add the constraint under its explicit id; one with that id but other content is replaced. Added with cibadmin,
    one atomic CIB update (pcs would take 0.4-1 s to start, under the lock; the steps' dependencies already made
    sure every resource it names exists, and the CIB's schema refuses a reference to one that does not)."""
    return (
        f"if ! cib_has {shlex.quote(c.xpath)}; then\n"
        f"  if cib_has {shlex.quote(_constraint_id_xpath(c.id))}; then {q(pcs.constraint_delete(c.id))}; fi\n"
        f"  cibadmin --create --scope constraints --xml-text {shlex.quote(c.xml)}\n"
        "fi\n"
    )


def _constraint_id_xpath(cid: str) -> str:
    return f"//constraints/*[@id='{cid}']"


def remove_constraint(cid: str) -> str:
    return f"if cib_has {shlex.quote(_constraint_id_xpath(cid))}; then {q(pcs.constraint_delete(cid))}; fi\n"


# --- the plan --------------------------------------------------------------------------------------------------


def cluster_identity(s: Settings) -> str:
    """What makes a cluster this cluster: a change means a new cluster (and a fresh CIB). Not its members: a node
    added or removed joins or leaves the running cluster (the `member-<node>` steps)."""
    return fingerprint(s.cluster.name)


def vip_primitive(s: Settings) -> Primitive:
    c = s.cluster
    return Primitive(
        id=VIP_ID,
        agent="ocf:heartbeat:IPaddr2",
        params={"ip": str(s.vip.address), "cidr_netmask": str(s.vip_prefix), "nic": s.vip_nic},
        ops=(
            Op("monitor", {"interval": c.vip_monitor.interval, "timeout": c.vip_monitor.timeout, "on-fail": "restart"}),
        ),
        # The node holding the VIP has the highest priority: a fence race between two nodes cut apart (see
        # priority-fencing-delay) is won by it, and the VIP does not move.
        meta={"migration-threshold": str(c.migration_threshold), "failure-timeout": c.failure_timeout, "priority": "1"},
    )


def haproxy_primitive(s: Settings) -> Primitive:
    c = s.cluster
    return Primitive(
        id=HAPROXY_ID,
        agent="systemd:haproxy",
        params={},
        ops=(
            Op(
                "monitor",
                {"interval": c.haproxy_monitor.interval, "timeout": c.haproxy_monitor.timeout, "on-fail": "restart"},
            ),
        ),
        meta={"migration-threshold": str(c.migration_threshold), "failure-timeout": c.failure_timeout},
        clone=s.placement == "everywhere",
    )


def fence_primitive(dev: FenceDevice, failure_timeout: str) -> Primitive:
    hosts = {"pcmk_host_list": dev.node}
    if dev.plug:
        hosts["pcmk_host_map"] = f"{dev.node}:{dev.plug}"  # the fencer passes the agent port=<domain>
    return Primitive(
        id=dev.id,
        agent=dev.agent,
        params={**dict(sorted(dev.params.items())), **hosts},
        ops=(Op("monitor", {"interval": "60s"}),),
        # A failed start is fatal on its node: without an expiry, a minute without its BMC bans a device from every
        # node for good, and its node can never be fenced again (the fencer skips a device scored -INFINITY).
        meta={"failure-timeout": failure_timeout},
        stonith=True,
    )


def _wait_script() -> str:
    return (
        "# cloud-init finishes the node (packages, users, files) before any cluster step.\n"
        "rc=0; cloud-init status --wait >/dev/null || rc=$?\n"
        'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then\n'
        "  cloud-init status --long >&2 || :\n"
        "  tail -n 5 /var/log/cloud-init-output.log >&2 || :\n"
        '  echo "ha-lb: cloud-init failed on node $ha_lb_node" >&2; exit 1\n'
        "fi\n"
        "# pcsd must answer before `pcs host auth`.\n"
        "deadline=$((SECONDS + 300))\n"
        "until curl -sk -o /dev/null https://localhost:2224/; do\n"
        '  if [ "$SECONDS" -ge "$deadline" ]; then\n'
        '    echo "ha-lb: pcsd does not answer on $ha_lb_node:2224" >&2; exit 1\n'
        "  fi\n"
        "  sleep 0.5\n"
        "done\n"
    )


def _hosts_script(lines: Sequence[str]) -> str:
    """/etc/hosts: localhost and the given `address fqdn name` lines, replaced whole (a temp file, then a rename)."""
    body = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", *lines]
    return (
        "new=$(mktemp /etc/hosts.XXXXXX)\n"
        f"printf '%s\\n' {' '.join(shlex.quote(x) for x in body)} > \"$new\"\n"
        'chmod 0644 "$new"; mv -f "$new" /etc/hosts\n'
    )


def _read_one_secret() -> str:
    """Exactly one value from stdin into $secret: a second line would reach chpasswd as another account's entry."""
    refuse = 'echo "ha-lb: $ha_lb_step: refused: {}" >&2; exit 1'
    return (
        f'IFS= read -r secret || [ -n "$secret" ] || {{ {refuse.format("no secret on stdin")}; }}\n'
        f'if [ -n "$(cat)" ]; then {refuse.format("more than one line on stdin")}; fi\n'
        'case "$secret" in\n'
        f"  '' | *[[:cntrl:]]*) {refuse.format('the secret is empty or holds control characters')} ;;\n"
        "esac\n"
    )


def _password_script() -> str:
    # A here-string: the password goes from stdin to chpasswd without touching any argv (see _SECRET_IN).
    return _read_one_secret() + 'chpasswd <<<"hacluster:$secret"\n'


_SECRET_IN = '<<<"$secret"'
"""The secret on a command's stdin. Not `printf ... | cmd`: a command that exits before reading (pcs failing early)
kills the printf of a pipe with SIGPIPE, and under pipefail the step fails with 141 instead of the command's status.
bash 5.1 and later (Debian 12 has 5.2) write a here-string this small into a pipe before the command starts, never
to disk."""


def _host_auth_script(members: list[tuple[str, str]]) -> str:
    return _read_one_secret() + f"{q(pcs.host_auth(members))} {_SECRET_IN}\n"


def _install_dropin(path: str, lines: Sequence[str]) -> str:
    """A systemd drop-in written only when its content differs, systemd reloaded only then (every reload is felt by
    whatever systemd is starting at that moment)."""
    return (
        f"install -d -m 0755 {shlex.quote(path.rsplit('/', 1)[0])}\n"
        f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)} > {path}.new\n"
        f"if ! cmp -s {path}.new {path}; then\n"
        f"  mv -f {path}.new {path}; systemctl daemon-reload\n"
        f"else rm -f {path}.new; fi\n"
    )


def _haproxy_config_script(everywhere: bool) -> str:
    if everywhere:
        # Every node runs HAProxy bound to the VIP, which only one node holds: bind must accept a foreign address.
        # A unit drop-in (not sysctl.d) also works where /proc/sys is read-only outside the service's start.
        dropin = (
            _install_dropin(
                NONLOCAL_BIND_DROPIN,
                ["[Service]", 'ExecStartPre=/bin/sh -c "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind"'],
            )
            + "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind\n"
        )
    else:
        dropin = f"if [ -e {NONLOCAL_BIND_DROPIN} ]; then rm -f {NONLOCAL_BIND_DROPIN}; systemctl daemon-reload; fi\n"
    restart = _install_dropin(RESTART_DROPIN, RESTART_DROPIN_LINES)
    return (
        f"new=$(mktemp {HAPROXY_CFG}.XXXXXX)\n"
        'cat > "$new"\n'
        'chgrp haproxy "$new"; chmod 0640 "$new"\n'
        "# The new config is checked on the node before it replaces the one HAProxy runs with.\n"
        'if ! haproxy -c -f "$new" >/dev/null; then\n'
        '  rm -f "$new"; echo "ha-lb: haproxy -c rejected the new config on $ha_lb_node" >&2; exit 1\n'
        "fi\n"
        f"[ -e {HAPROXY_DIST} ] || cp -p {HAPROXY_CFG} {HAPROXY_DIST}\n"
        f'if cmp -s "$new" {HAPROXY_CFG}; then rm -f "$new"; changed=0\n'
        f'else mv -f "$new" {HAPROXY_CFG}; changed=1; fi\n'
        f"{dropin}{restart}"
        "# Reload only where HAProxy runs: Pacemaker starts it where it belongs.\n"
        'if [ "$changed" = 1 ] && systemctl is-active --quiet haproxy; then systemctl reload haproxy; fi\n'
    )


def _haproxy_config_delete() -> str:
    return (
        f"if [ -e {HAPROXY_DIST} ]; then mv -f {HAPROXY_DIST} {HAPROXY_CFG}; fi\n"
        f"for f in {NONLOCAL_BIND_DROPIN} {RESTART_DROPIN}; do\n"
        '  if [ -e "$f" ]; then rm -f "$f"; systemctl daemon-reload; fi\n'
        "done\n"
        "if systemctl is-active --quiet haproxy; then systemctl reload haproxy; fi\n"
    )


def _cluster_setup_script(s: Settings, members: list[tuple[str, str]]) -> str:
    name = s.cluster.name
    ours = shlex.quote(f"^[[:space:]]*cluster_name:[[:space:]]*{name}[[:space:]]*$")
    return (
        f"if [ -f {COROSYNC_CONF} ]; then\n"
        f"  if ! grep -Eq {ours} {COROSYNC_CONF}; then\n"
        f'    echo "ha-lb: $ha_lb_node already belongs to another cluster ({COROSYNC_CONF}); '
        f'run \\"pcs cluster destroy\\" there first" >&2; exit 1\n'
        "  fi\n"
        "else\n"
        f"  {q(pcs.cluster_setup(name, members, s.token_ms, knet_ping_ms(s.token_ms)))}\n"
        "fi\n"
    )


# The mark of a node out of the cluster for its replacement (`leave-<node>` takes it, `member-<node>` drops it once
# the node is back), and of a node joining: one at a time, cluster-wide. A CIB create of an id that exists fails
# (EEXIST), whichever node asks, so taking it is atomic; it names the node, for the operator too (`pcs property
# config` shows it as ha-lb-leaving).
LEAVING_ID = "ha-lb-leaving"
STACK_PROPERTY = "ha-lb-stack"
FENCE_DELAY_PROPERTY = "ha-lb-priority-fencing-delay"
"""The configured priority-fencing-delay, which a quorum device's removal restores."""


def _ha_lb_attribute(name: str, *action: str) -> list[str]:
    """`crm_attribute` on a cluster property of the program's own (`pcs property` refuses one it does not know)."""
    return ["crm_attribute", "--type", "crm_config", "--name", name, *action]


def _stack_attribute(*action: str) -> list[str]:
    """The stack's node list in the CIB."""
    return _ha_lb_attribute(STACK_PROPERTY, *action)


MEMBERSHIP_WAIT_S = 1800
"""How long a join or a leave waits without the cluster changing at all (every change starts the wait again)."""


_LISTED_NODES = f"sed -n 's/^[[:space:]]*name:[[:space:]]*\\([^[:space:]]*\\).*/\\1/p' {COROSYNC_CONF}"
"""The node names corosync.conf lists, one a line."""


def _membership_functions() -> str:
    """Bash helpers of the join and leave steps: the cluster as this node sees it, and the mark."""
    mark = f"//cluster_property_set[@id='{LEAVING_ID}']"
    return (
        'listed() { grep -Eq "^[[:space:]]*name:[[:space:]]*$1[[:space:]]*\\$" '
        f"{COROSYNC_CONF} 2>/dev/null; }}\n"
        f"listed_nodes() {{ {_LISTED_NODES}; }}\n"
        "# name online standby, for each cluster node (not remote ones; crm_mon's XML: its stable output).\n"
        "node_states() {\n"
        "  crm_mon -1 --output-as=xml 2>/dev/null | python3 -c 'import sys, xml.etree.ElementTree as E\n"
        'for n in E.parse(sys.stdin).getroot().iterfind("nodes/node"):\n'
        '    if n.get("type") == "member": print(n.get("name"), n.get("online"), n.get("standby"))\'\n'
        "}\n"
        f'marked() {{ {{ cibadmin --query --xpath "{mark}/nvpair" 2>/dev/null || :; }} '
        '| sed -n \'s/.* value="\\([^"]*\\)".*/\\1/p\'; }\n'
        "take_mark() { take_error=$(cibadmin --create -o crm_config --xml-text "
        f"\"<cluster_property_set id='{LEAVING_ID}'><nvpair id='{LEAVING_ID}-node' name='{LEAVING_ID}' value='$1'/>"
        '</cluster_property_set>" 2>&1 >/dev/null); }\n'
        f"drop_mark() {{ cibadmin --delete --xpath \"{mark}[nvpair[@value='$1']]\" >/dev/null 2>&1 || :; }}\n"
        "# No quorum device, or every other node's corosync-qdevice alive and casting its vote (corosync-quorumtool's\n"
        "# A,V; this node's own may be why it is replaced).\n"
        "qdevice_voting() {\n"
        f"  {_QDEVICE_IN_CONF} || return 0\n"
        "  local q; q=$(corosync-quorumtool -s 2>/dev/null | grep -vF '(local)') || return 1\n"
        "  printf '%s\\n' \"$q\" | grep -q 'A,V,' &&\n"
        "    ! printf '%s\\n' \"$q\" | grep -Eq '(^|[[:space:]])(NA,|A,NV,|NR[[:space:]])'\n"
        "}\n"
        "# The wait ends in failure only after MEMBERSHIP_WAIT_S with nothing changing in the cluster.\n"
        'progress() { if [ "$1" != "${last:-}" ]; then last=$1; '
        f"deadline=$((SECONDS + {MEMBERSHIP_WAIT_S})); fi; }}\n"
    )


def _wait_for_the_mark(node: str, why: str) -> str:
    """Loop until this node holds the mark (taken, or already its own): another holder is out of the cluster (or
    joining) until its member step drops it. Expects `stale HOLDER` (true when the mark is left over) and `ready`."""
    n = shlex.quote(node)
    return (
        "waiting=''\n"
        "while :; do\n"
        "  holder=$(marked); states=$(node_states) || states=''\n"
        '  progress "$holder|$states"\n'
        f'  if [ -n "$holder" ] && [ "$holder" != {n} ]; then\n'
        '    if stale "$holder"; then drop_mark "$holder"; waiting="a stale mark of $holder"\n'
        '    else waiting="$holder is out of the cluster or joining it"; fi\n'
        "  elif ready; then\n"
        f'    if [ "$holder" = {n} ] || take_mark {n}; then\n'
        "      states=$(node_states) || states=''\n"
        "      if ready; then break; fi  # checked again once marked: nobody left in between\n"
        f"      drop_mark {n}\n"
        "    else\n"
        '      waiting="the mark could not be taken: $take_error"\n'
        "    fi\n"
        "  fi\n"
        '  if [ "$SECONDS" -ge "$deadline" ]; then\n'
        f'    echo "ha-lb: {why}: $waiting, unchanged for {MEMBERSHIP_WAIT_S} s. Nodes leave the cluster one at a '
        'time, each once every other one is back; run pulumi up again when they are" >&2; exit 1\n'
        "  fi\n"
        "  sleep 2\n"
        "done\n"
    )


def _stale_function(stack: Sequence[str]) -> str:
    """A mark is stale when its holder is neither in the cluster nor in the stack: it left the stack for good, and
    nothing will bring it back to drop its mark. The stack as the last `up` declared it, from the CIB
    (`cluster-properties` writes it, before Pulumi deletes what the stack no longer has), else as this step knew it:
    a delete runs the script stored when its step was created."""
    in_stack = " ".join(shlex.quote(x) for x in stack)
    return (
        # The totem change and the quorum device mark as `totem@<its node>`, `qdevice@<its node>`: stale on the
        # same terms as their node.
        "stale() { local who=${1#*@} in_stack; "
        f"in_stack=$({q(_stack_attribute('--query', '--quiet'))} 2>/dev/null) || in_stack=''; "
        f'! listed "$who" && case " ${{in_stack:-{in_stack}}} " in *" $who "*) false ;; *) true ;; esac; }}\n'
    )


def _member_script(node: str, addr: str, stack: Sequence[str], arbiter: str | None = None) -> str:
    """Run on another member, once it runs the cluster (on a first `up`, once formed: it holds one of Pulumi's
    workers while it waits, which the parallel warning counts). A node it does not list (new to the stack, or a
    replaced VM whose old self left) is added while this node holds the mark (joins and leaves one at a time), then
    waited for until online; its mark is dropped. No Pulumi dependency on the cluster's steps: that would tie this
    node's joining to every other node's VM."""
    n = shlex.quote(node)
    auth = [(node, addr), *([(arbiter, arbiter)] if arbiter else [])]
    return (
        _read_one_secret() + _membership_functions() + f"deadline=$((SECONDS + {MEMBERSHIP_WAIT_S}))\n"
        "# A member running its cluster: on a first `up`, once cluster-setup and cluster-start have run.\n"
        'until listed "$ha_lb_node" && crm_mon -1 >/dev/null 2>&1; do\n'
        '  if [ "$SECONDS" -ge "$deadline" ]; then\n'
        f'    echo "ha-lb: no running cluster on $ha_lb_node for {node} to join" >&2; exit 1\n'
        "  fi\n"
        "  sleep 2\n"
        "done\n"
        f"if ! listed {n}; then\n"
        "  ready() { :; }\n"
        f"  {_stale_function(stack)}"
        + "".join(f"  {line}\n" for line in _wait_for_the_mark(node, f"{node} cannot join").splitlines())
        # Not added, whatever stopped it (even a lock never had): the mark goes. Added: kept until it is online.
        + f"  trap {shlex.quote(f'listed {n} || drop_mark {n}')} EXIT\n"
        + "".join(f"  {line}\n" for line in _lock_prelude().splitlines())
        # With a quorum device, pcs signs the new node's qdevice certificate through the arbiter's pcsd.
        + f"  {q(pcs.host_auth(auth))} {_SECRET_IN}\n"
        f"  {q(pcs.cluster_node_add(node, addr, CLUSTER_START_WAIT_S))}\n"
        "  exec 9>&-\n"
        "fi\n"
        f"last=''; deadline=$((SECONDS + {MEMBERSHIP_WAIT_S}))\n"
        f"until node_states | grep -q {shlex.quote(f'^{node} true ')}; do\n"
        '  progress "$(node_states)"\n'
        '  if [ "$SECONDS" -ge "$deadline" ]; then\n'
        f'    echo "ha-lb: {node} is in corosync.conf but not online. A VM replaced without leaving the cluster '
        f'comes back blank: run \\"pcs cluster node remove {node}\\" on a member, then pulumi up" >&2; exit 1\n'
        "  fi\n"
        "  sleep 2\n"
        "done\n" + _forget_removed_nodes() + f"drop_mark {n}  # it is back\n"
    )


def _forget_removed_nodes() -> str:
    # At every membership change Pacemaker 2.1.5's DC writes every node in its controller's membership cache into
    # the CIB (populate_cib_nodes): a removed node still in that cache comes back, OFFLINE in `pcs status` (the e2e
    # saw a node scaled away return at a later replacement). Once a join is done, a node Pacemaker lists that
    # corosync.conf does not and that is offline is purged again, as `pcs cluster node remove` does.
    return (
        "gone=$(node_states | awk '$2 == \"false\" {print $1}') || gone=\n"
        'for g in $gone; do listed "$g" || timeout 60 crm_node --force --remove "$g" >/dev/null 2>&1 || :; done\n'
    )


def _leave_script(node: str, stack: Sequence[str]) -> str:
    """Run on the node itself, before its VM goes (replaced, or taken out of the stack): once every other node
    corosync.conf lists is online and not in standby and no other node holds the mark, it takes the mark (kept
    until its member step drops it, once it is back), goes to standby (its resources move: a planned switchover)
    and takes itself out of the cluster. Pulumi replaces every changed VM at once; this wait makes it one node at a
    time."""
    n = shlex.quote(node)
    return (
        _membership_functions()
        + f"if ! listed {n}; then echo {shlex.quote(f'{node}: not a cluster member')}; exit 0; fi\n"
        "ready() {  # every other node listed online and not in standby; else says who is not\n"
        "  local o; waiting=''\n"
        "  for o in $(listed_nodes); do\n"
        f'    [ "$o" = {n} ] && continue\n'
        '    if ! printf \'%s\\n\' "$states" | grep -qx "$o true false"; then\n'
        '      waiting="${waiting:+$waiting, }$o is not an online member"\n'
        "    fi\n"
        "  done\n"
        "  # With a quorum device, the nodes left count on its vote (pcs's quorum check counts it as given).\n"
        '  qdevice_voting || waiting="${waiting:+$waiting, }the quorum device does not vote (is the arbiter up?)"\n'
        '  [ -z "$waiting" ]\n'
        "}\n"
        + _stale_function(stack)
        + _wait_for_the_mark(node, f"{node} stays in the cluster")
        + f"if ! {q(pcs.node_standby(node, CLUSTER_START_WAIT_S))}; then\n"
        f"  {q(pcs.node_unstandby(node))} || :; drop_mark {n}; exit 1\n"
        "fi\n"
        # Every other node answers (it was just seen online): no --skip-offline, which would let one miss the new
        # corosync.conf.
        f"if ! {q(pcs.cluster_node_remove(node, skip_offline=False))}; then\n"
        # Half removed (no longer listed): the mark stays, so no other node leaves before this one is back.
        f"  if listed {n}; then {q(pcs.node_unstandby(node))} || :; drop_mark {n}; fi\n"
        "  exit 1\n"
        "fi\n"
        f"echo {shlex.quote(f'{node}: left the cluster')}\n"
    )


def _cluster_start_script() -> str:
    # pcs's --wait asks each node through pcsd every 2 s, after a first 2 s sleep: up to 2 s late on every start, on
    # the path of everything after it. Asking the local Pacemaker every 0.2 s whether every node corosync.conf lists
    # is online and no longer pending (what pcs waits for, node by node) ends the step as soon as that holds.
    started = (
        "import sys, xml.etree.ElementTree as E\n"
        "listed = sys.argv[1:]\n"
        'nodes = {n.get("name"): n for n in E.parse(sys.stdin).getroot().iterfind("nodes/node")}\n'
        'sys.exit(0 if listed and all(n in nodes and nodes[n].get("online") == "true" '
        'and nodes[n].get("pending") == "false" for n in listed) else 1)\n'
    )
    # Run again on a cluster that ran its later steps (its text changed in an upgrade: cluster-properties wrote the
    # stack's node list), it leaves the cluster as it is, a node stopped by hand among it. A first `up` tried again
    # after a partial start starts and waits again (`pcs cluster start` leaves running nodes alone).
    formed = q(_stack_attribute("--query", "--quiet"))
    return (
        f"if systemctl -q is-active pacemaker.service && {formed} >/dev/null 2>&1; then\n"
        "  echo 'ha-lb: the cluster runs already'; exit 0\n"
        "fi\n"
        f"{q(pcs.cluster_start_all())}\n"
        f"deadline=$((SECONDS + {CLUSTER_START_WAIT_S}))\n"
        f"until crm_mon -1 --output-as=xml 2>/dev/null\\\n"
        f"    | python3 -c {shlex.quote(started)} $({_LISTED_NODES}) 2>/dev/null; do\n"
        '  if [ "$SECONDS" -ge "$deadline" ]; then\n'
        f'    echo "ha-lb: step $ha_lb_step: not every node started within {CLUSTER_START_WAIT_S} s" >&2\n'
        "    crm_mon -1 >&2 || :\n"
        "    exit 1\n"
        "  fi\n"
        "  sleep 0.2\n"
        "done\n"
    )


def _cib_seed_script(dc_deadtime: str) -> str:
    # Only on a node of a cluster being set up (corosync.conf written) where Pacemaker has never run: its first CIB
    # then carries dc-deadtime (Pacemaker reads a CIB without a digest file, warning "No on-disk digest present"; it
    # writes the digest itself from then on). A node joining a running cluster later has no corosync.conf yet (`pcs
    # cluster node add` brings it, and refuses a node holding a CIB) and takes the cluster's CIB.
    # And corosync and Pacemaker enabled at boot, on each node itself before anything runs there: an enable reloads
    # systemd, which can fail a systemd resource starting beside it (CI once saw HAProxy's first start fail as `pcs
    # cluster enable --all` ran), and pcsd reports a failed enable as done; systemctl here fails the step.
    return (
        f"if [ -f {COROSYNC_CONF} ]; then\n"
        "  for u in corosync pacemaker; do systemctl -q is-enabled $u.service || systemctl enable $u.service; done\n"
        "fi\n"
        f"if [ -f {COROSYNC_CONF} ] && [ ! -e {CIB_XML} ]; then\n"
        "  seed=$(mktemp)\n"
        '  cibadmin --empty > "$seed"\n'
        f'  CIB_file="$seed" crm_attribute --type crm_config --name dc-deadtime --update {shlex.quote(dc_deadtime)}\n'
        f'  install -o hacluster -g haclient -m 0600 "$seed" {CIB_XML}\n'
        '  rm -f "$seed"\n'
        "fi\n"
    )


def _cib_seed_delete() -> str:
    # A seed Pacemaker never used has no digest file; a used CIB belongs to the cluster (`pcs cluster destroy`).
    return f"if [ -e {CIB_XML} ] && [ ! -e {CIB_XML}.sig ]; then rm -f {CIB_XML}; fi\n"


def knet_ping_ms(token_ms: int) -> tuple[int, int]:
    """knet's ping (interval, timeout) on link 0. Corosync's default timeout is token / 2: 200 ms at a 400 ms token,
    where a host busy for a moment marks links down, and each drop re-forms the ring (465 new-membership lines in 6
    idle minutes at 5 nodes; none with 1000 ms). With one link the token alone declares a node dead (knet's
    link-down only logs), so a longer link timeout does not slow detection; a link back counts again after a few
    pongs, 0.5-0.75 s at a 250 ms interval. The interval is the stack's choice, a quarter of the timeout
    (corosync's is half): a link survives 3 lost pongs."""
    timeout = max(1000, token_ms // 2)
    return timeout // 4, timeout


# Link options have no pcs command for a running cluster (`pcs cluster link update` wants it stopped, and has no
# --corosync_conf), though corosync takes them on a reload: edit this node's corosync.conf with pcs's own parser,
# the way that command does, and let the totem update that follows send the file to every node and reload it there.
_KNET_LINK_EDIT = """\
import sys
from pcs.lib.file.instance import FileInstance
path, interval, timeout = sys.argv[1:4]
conf = FileInstance.for_corosync_conf()
with open(path, "rb") as f:
    facade = conf.raw_to_facade(f.read())
facade.update_link("0", {}, {"ping_interval": interval, "ping_timeout": timeout})
sys.stdout.buffer.write(conf.facade_to_raw(facade))
"""


def knet_link_edit(ping: tuple[int, int] | None, on_failure: str) -> str:
    """Set link 0's knet ping options in this node's corosync.conf (None: back to corosync's defaults), replacing
    the file whole (root's, 0644, as pcs writes it) only once the edit succeeded; else runs `on_failure`."""
    interval, timeout = (str(v) for v in ping) if ping else ("", "")
    edited = f"{COROSYNC_CONF}.ha-lb"
    return (
        # -I: nothing from the working directory on the module path. The program follows as a here-document.
        f"if ! /usr/bin/python3 -I - {COROSYNC_CONF} {shlex.quote(interval)} {shlex.quote(timeout)} > {edited} "
        f"<<'PY' || ! chmod 0644 {edited} || ! mv -f {edited} {COROSYNC_CONF}\n"
        f"{_KNET_LINK_EDIT}PY\n"
        f"then rm -f {edited}; {on_failure}; fi\n"
    )


# `ready` for a step after which pcs must reach every node (it skips none): every node corosync.conf lists online
# (standby or not), else `waiting` says who is not. Reads `$states` (node_states) and `listed_nodes`.
_EVERY_NODE_ONLINE = (
    "ready() {\n"
    "  local o; waiting=''\n"
    "  for o in $(listed_nodes); do\n"
    '    if ! printf \'%s\\n\' "$states" | grep -q "^$o true "; then\n'
    '      waiting="${waiting:+$waiting, }$o is not online"\n'
    "    fi\n"
    "  done\n"
    '  [ -z "$waiting" ]\n'
    "}\n"
)


def _totem_script(node: str, token_ms: int, stack: Sequence[str]) -> str:
    """token_coefficient 0: the token is what the profile says at any size (corosync adds 650 ms per node past two);
    knet's ping on link 0 as `knet_ping_ms` says. Both are checked as corosync runs them: a new cluster's setup
    wrote them, and this changes nothing there.

    pcs rewrites corosync.conf whole on every node, as a join or a leave does from another node, where this node's
    lock does not reach: it takes the mark as they do (waiting for a node out of the cluster to be back), then the
    lock, and drops the mark once corosync runs with the new file."""
    # A mark of its own kind: the node's name is its leave's (or join's) mark, which this must wait for, not take.
    mark = f"totem@{node}"
    interval, timeout = knet_ping_ms(token_ms)
    return (
        "running() { corosync-cmapctl -g \"$1\" 2>/dev/null | sed 's/.*= //'; }\n"
        "have=$(running totem.token) || have=\n"
        "coef=$(running totem.token_coefficient) || coef=\n"
        "ping_interval=$(running runtime.config.totem.interface.0.knet_ping_interval) || ping_interval=\n"
        "ping_timeout=$(running runtime.config.totem.interface.0.knet_ping_timeout) || ping_timeout=\n"
        f'if [ "$have" = {token_ms} ] && [ "$coef" = 0 ] &&\n'
        f'  [ "$ping_interval" = {interval} ] && [ "$ping_timeout" = {timeout} ]; then exit 0; fi\n'
        + _membership_functions()
        # pcs sends the file to every node, none skipped: a node that missed it would run the old timing, and one
        # that pcs cannot reach fails the change half sent.
        + _EVERY_NODE_ONLINE
        + _stale_function(stack)
        + _wait_for_the_mark(mark, "the totem timing cannot change")
        + f"trap {shlex.quote(f'drop_mark {mark}')} EXIT  # whatever happens next, even a lock never had\n"
        + _lock_prelude()
        + knet_link_edit(
            (interval, timeout),
            'echo "ha-lb: step $ha_lb_step on node $ha_lb_node: '
            f"knet's ping could not be set in {COROSYNC_CONF}\" >&2; exit 1",
        )
        # Sends this node's corosync.conf, the link edit in it, to every node and reloads corosync there.
        + f"{q(pcs.totem_update(token_ms))}\n"
        # Again: corosync 3.1.7 computes default ping timers on a reload from the token it ran with before (fixed in
        # 3.1.10), so going back to the defaults takes a second reload; with the stack's values it changes nothing.
        + f"{q(pcs.corosync_reload())}\n"
    )


def _totem_delete() -> str:
    """Corosync's defaults back. Runs only when the cluster's identity changes, just before the old cluster is
    destroyed whole, when some nodes may be gone already: a failure is reported, not fatal."""
    left = 'echo "ha-lb: $ha_lb_step: corosync\'s timing left as it was (the cluster is going)" >&2'
    return (
        _lock_prelude()
        + f"if [ -f {COROSYNC_CONF} ]; then\n"
        + knet_link_edit(None, on_failure=f"{left}; exit 0")
        + f"if ! {q(pcs.totem_update(None))} || ! {q(pcs.corosync_reload())}; then {left}; fi\n"
        + "fi\n"
    )


QNETD_DB = "/etc/corosync/qnetd/nssdb"
_QNETD_SET_UP = f"[ -e {QNETD_DB}/cert9.db ] || [ -e {QNETD_DB}/cert8.db ]"


def qdevice_timeout_ms(s: Settings) -> int:
    """corosync-qdevice's `timeout`: it beats to qnetd every 0.8 x this, and qnetd drops a node silent for 1.5 beats
    (its dead-peer detection), so 2 x token drops a hung or powered-off node 2.4 x token after its last beat, about
    when corosync notices it (2.2 x token). Until qnetd drops it, the survivors wait for its vote; the default
    (10 s) would hold a failover up to 12 s. Not below 1250 ms: a beat is at least a second."""
    return max(1250, 2 * s.token_ms)


def qdevice_heuristic(vip: str) -> str:
    """The command corosync-qdevice runs at each membership change (its own argv parser takes the double quotes):
    it passes only on the node holding the VIP, so qnetd gives its vote to that node's half of a tie."""
    return f'/bin/sh -c "ip -4 -o address show to {vip}/32 | grep -q ."'


def qdevice_heuristic_for(s: Settings) -> str | None:
    """The device's heuristic: ffsplit only (lms ranks partitions by heuristics before size, so a lone VIP node would
    outvote the rest)."""
    qd = s.cluster.quorum_device
    return qdevice_heuristic(str(s.vip.address)) if qd is not None and qd.algorithm == "ffsplit" else None


def _qnetd_script() -> str:
    # Set up before, its certificate authority stays (the nodes' certificates are signed by it). Without one (a baked
    # image leaves none, so no two arbiters share it; a destroyed one), made as Debian's postinst makes it: `pcs qdevice
    # setup` would leave the database root's, and Debian's qnetd runs as coroqnetd ("Permission denied" on the NSS
    # directory); the group is set either way, which also mends an arbiter set up by pcs before.
    return (
        f"if ! {{ {_QNETD_SET_UP}; }}; then corosync-qnetd-certutil -i -G; fi\n"
        f"chgrp coroqnetd {QNETD_DB} {QNETD_DB}/cert9.db {QNETD_DB}/key4.db\n"
        "systemctl -q is-enabled corosync-qnetd || systemctl enable corosync-qnetd\n"
        "systemctl -q is-active corosync-qnetd || systemctl start corosync-qnetd\n"
    )


def _qnetd_delete() -> str:
    return f"if {_QNETD_SET_UP}; then {q(pcs.qdevice_destroy())}; fi\n"


def _quorum_device_script(s: Settings, node: str, stack: Sequence[str]) -> str:
    """Adds the arbiter as the cluster's quorum device, once every node corosync.conf lists is online (pcs signs a
    certificate for each and starts corosync-qdevice everywhere). Like the totem change it rewrites corosync.conf on
    every node: it takes the mark (`qdevice@<node>`), then the lock."""
    arb, qd = s.arbiter, s.cluster.quorum_device
    assert arb is not None and qd is not None
    addr, alg, timeout = str(arb.address), qd.algorithm, qdevice_timeout_ms(s)
    mark = f"qdevice@{node}"
    heuristic = qdevice_heuristic_for(s)
    cmap = "corosync-cmapctl -g quorum.device.{0} 2>/dev/null | sed 's/.*= //'"
    want_mode = "sync" if heuristic else ""
    return (
        _read_one_secret()
        + f"have_host=$({cmap.format('net.host')}) || have_host=\n"
        + f"have_alg=$({cmap.format('net.algorithm')}) || have_alg=\n"
        + f"have_mode=$({cmap.format('heuristics.mode')}) || have_mode=\n"
        + f"have_timeout=$({cmap.format('timeout')}) || have_timeout=\n"
        + f'same=; [ "$have_host" = {shlex.quote(addr)} ] && [ "$have_alg" = {alg} ] && '
        f'[ "$have_mode" = "{want_mode}" ] && same=1\n'
        + f'if [ -n "$same" ] && [ "$have_timeout" = {timeout} ]; then\n'
        + "".join(f"  {line}\n" for line in _lock_prelude().splitlines())
        + f"  {q(pcs.property_set({'priority-fencing-delay': '0'}))}\n"
        + "  exit 0\n"
        + "fi\n"
        + _membership_functions()
        + _EVERY_NODE_ONLINE
        + _stale_function(stack)
        # Even a new timeout alone rewrites corosync.conf everywhere and restarts corosync-qdevice on every node:
        # only with every node online and no other node out.
        + _wait_for_the_mark(mark, "the quorum device cannot be added or changed")
        + f"trap {shlex.quote(f'drop_mark {mark}')} EXIT\n"
        + _lock_prelude()
        + 'if [ -n "$same" ]; then\n'
        + f"  {q(pcs.quorum_device_update_timeout(timeout))}\n"
        + "else\n"
        + f"  {q(pcs.host_auth([(addr, addr)]))} {_SECRET_IN}\n"
        + "  # Another device (set by hand, or an older definition): replaced by the stack's.\n"
        + f'  if [ -n "$have_host" ]; then {q(pcs.quorum_device_remove())}; fi\n'
        + f"  {q(pcs.quorum_device_add(addr, alg, timeout, heuristic))}\n"
        + "fi\n"
        + "# Only the half given the arbiter's vote may fence now: no race to delay (`_property_steps`).\n"
        + f"{q(pcs.property_set({'priority-fencing-delay': '0'}))}\n"
    )


def _quorum_device_steps(s: Settings) -> list[Step]:
    """The arbiter: qnetd set up on its VM, then added to the cluster as its quorum device."""
    arb = s.arbiter
    if arb is None or s.cluster.quorum_device is None:
        return []
    qd = s.cluster.quorum_device
    first = s.first_node.name
    qnetd = f"qnetd-{arb.name}"
    return [
        Step(
            qnetd,
            arb.name,
            StepKind.NODE,
            _qnetd_script(),
            _qnetd_delete(),
            depends_on=(f"wait-{arb.name}", f"hacluster-password-{arb.name}"),
            replace_on=(_vm_key(arb),),
            owner="node",
        ),
        Step(
            "quorum-device",
            first,
            StepKind.MEMBERSHIP,
            _quorum_device_script(s, first, [n.name for n in s.node_list]),
            _lock_prelude()
            + f"if {_QDEVICE_IN_CONF}; then\n"
            # two_node again: its fence race needs the delay back first, as configured now.
            + f"  pfd=$({q(_ha_lb_attribute(FENCE_DELAY_PROPERTY, '--query', '--quiet'))} 2>/dev/null) || "
            f"pfd={shlex.quote(s.cluster.fencing.priority_delay)}\n"
            + '  pcs property set "priority-fencing-delay=${pfd:-'
            + s.cluster.fencing.priority_delay
            + '}"\n'
            + f"  {q(pcs.quorum_device_remove())}\n"
            + "fi\n",
            depends_on=("cluster-start", qnetd, "haproxy-enable"),
            stdin=Stdin.HACLUSTER_PASSWORD,
            # A new arbiter VM has a new certificate authority: the nodes' certificates are signed again.
            replace_on=(cluster_identity(s), fingerprint(str(arb.address), qd.algorithm, str(s.vip.address))),
            about=(arb.name,),
            on_running_cluster=True,
        ),
    ]


@dataclass(frozen=True)
class Expectation:
    """Something the live CIB must (or must not) hold once the plan is applied: the no-drift check."""

    what: str
    xpath: str
    present: bool = True


def _vm_key(vm: Node) -> str:
    """What makes a VM's own steps run afresh: a new name, address or MAC is another machine."""
    return fingerprint(vm.name, str(vm.address), vm.mac)


def _vm_steps(vm: Node) -> list[Step]:
    """On every VM, node or arbiter: cloud-init done and pcsd up, then the hacluster password."""
    wait = f"wait-{vm.name}"
    return [
        Step(wait, vm.name, StepKind.WAIT, _wait_script(), None, replace_on=(_vm_key(vm),), owner="node"),
        Step(
            f"hacluster-password-{vm.name}",
            vm.name,
            StepKind.NODE,
            _password_script(),
            "usermod -p '!' hacluster\n",
            depends_on=(wait,),
            stdin=Stdin.HACLUSTER_PASSWORD,
            replace_on=(_vm_key(vm),),
            owner="node",
        ),
    ]


def _node_steps(s: Settings) -> list[Step]:
    """Per node: cloud-init done and pcsd up, the hacluster password, haproxy.cfg, every node's name in /etc/hosts,
    the fencing secret (a device may run on any node)."""
    everywhere = s.placement == "everywhere"
    secret = secret_for(s) if fence_devices(s) else None
    steps: list[Step] = []
    for n in s.node_list:
        node_key = _vm_key(n)
        wait = f"wait-{n.name}"
        steps += [
            *_vm_steps(n),
            Step(
                f"haproxy-config-{n.name}",
                n.name,
                StepKind.NODE,
                _haproxy_config_script(everywhere),
                _haproxy_config_delete(),
                depends_on=(wait,),
                stdin=Stdin.HAPROXY_CFG,
                replace_on=(node_key,),
                owner="node",
            ),
        ]
        steps.append(
            Step(
                f"hosts-{n.name}",
                n.name,
                StepKind.NODE,
                # Every node by name: run again (a Pulumi update) when nodes come or go.
                _hosts_script([f"{m.address} {m.fqdn} {m.name}" for m in s.node_list]),
                _hosts_script([f"{n.address} {n.fqdn} {n.name}"]),
                depends_on=(wait,),
                replace_on=(node_key,),
                owner="node",
            )
        )
        if secret is not None:
            steps.append(
                Step(
                    f"fence-secret-{n.name}",
                    n.name,
                    StepKind.NODE,
                    _fence_secret_script(secret),
                    f"rm -rf {FENCE_DIR}\n" + (f"rm -f {XVM_KEY_FILE}\n" if secret is FenceSecret.XVM_KEY else ""),
                    depends_on=(wait,),
                    stdin=Stdin.FENCE_SECRET,
                    replace_on=(node_key,),
                    owner="node",
                )
            )
    if s.arbiter is not None:
        steps += _vm_steps(s.arbiter)
    return steps


def _formation_steps(s: Settings) -> list[Step]:
    """The cluster itself: pcsd authentication, corosync.conf, a seeded first CIB, started and enabled at boot."""
    nodes = s.node_list
    first = s.first_node.name
    members = [(n.name, str(n.address)) for n in nodes]
    ident = cluster_identity(s)
    deauth = "".join(
        f"if grep -qF {shlex.quote(json.dumps(name))} /var/lib/pcsd/known-hosts 2>/dev/null; then "
        f"{q(pcs.host_deauth([name]))}; fi\n"
        for name, _ in members
    )
    steps = [
        Step(
            "host-auth",
            first,
            StepKind.AUTH,
            _host_auth_script(members),
            deauth,
            depends_on=tuple(f"{p}-{n.name}" for n in nodes for p in ("wait", "hacluster-password")),
            stdin=Stdin.HACLUSTER_PASSWORD,
            replace_on=(ident,),
        ),
        Step(
            "cluster-setup",
            first,
            StepKind.CLUSTER,
            _cluster_setup_script(s, members),
            f"if [ -f {COROSYNC_CONF} ]; then {q(pcs.cluster_destroy_all())}; fi\n",
            depends_on=("host-auth",),
            replace_on=(ident,),
        ),
    ]
    steps += [
        Step(
            f"cib-seed-{n.name}",
            n.name,
            StepKind.NODE,
            _cib_seed_script(s.cluster.dc_deadtime),
            _cib_seed_delete(),
            # setup clears the nodes' cluster files; a replaced VM's is done installing (its own wait)
            depends_on=("cluster-setup", f"wait-{n.name}"),
            replace_on=(ident,),
            owner="node",
        )
        for n in nodes
    ]
    steps.append(
        Step(
            "cluster-start",
            first,
            StepKind.CLUSTER,
            _cluster_start_script(),
            f"if [ -f {COROSYNC_CONF} ]; then {q(pcs.cluster_stop_all())}; fi\n",
            depends_on=tuple(f"cib-seed-{n.name}" for n in nodes),
            replace_on=(ident,),
        )
    )
    # Start at boot: each node's cib-seed step enabled the units there before anything ran. This step, before any
    # resource exists, enables them on every node where it finds them off on its own: a hand edit.
    steps.append(
        Step(
            "cluster-enable",
            first,
            StepKind.CLUSTER,
            # Each its own check: is-enabled with several units succeeds when any one is enabled.
            "if ! systemctl -q is-enabled corosync.service || ! systemctl -q is-enabled pacemaker.service; then\n"
            f"  {q(pcs.cluster_enable_all())}\n"
            "fi\n",
            f"if [ -f {COROSYNC_CONF} ]; then {q(pcs.cluster_disable_all())}; fi\n",
            depends_on=("cluster-start",),
            replace_on=(ident,),
            on_running_cluster=True,
        )
    )
    return steps


def _membership_steps(s: Settings) -> list[Step]:
    """Nodes joining and leaving the running cluster, and the totem timing it runs with.

    Per node a pair: `member-<node>` joins it, run on another member; `leave-<node>` takes it out, run on the node
    itself, in its delete (before its VM goes). A replaced VM comes back blank: Pulumi deletes both before the old
    VM (they name the VM in their triggers), then creates them after the new one. Neither waits in Pulumi for
    anything of another node: a node whose VM is replaced along with others must be able to join while the others
    wait in their leave, one at a time."""
    first, second = s.node_list[0].name, s.node_list[1].name
    names = [n.name for n in s.node_list]
    ident = cluster_identity(s)
    fencing = bool(fence_devices(s))
    steps: list[Step] = []
    for n in s.node_list:
        own = (f"haproxy-config-{n.name}", f"hacluster-password-{n.name}", f"hosts-{n.name}")
        steps += [
            Step(
                f"member-{n.name}",
                second if n.name == first else first,
                StepKind.MEMBERSHIP,
                _member_script(n.name, str(n.address), names, str(s.arbiter.address) if s.arbiter else None),
                None,  # undone by leave-<node>
                # HAProxy may start there once it joins, its pcsd takes the password it was given, and it may run
                # fence devices.
                depends_on=(
                    *own,
                    *((f"fence-secret-{n.name}",) if fencing else ()),
                    *((f"hacluster-password-{s.arbiter.name}",) if s.arbiter else ()),
                ),
                stdin=Stdin.HACLUSTER_PASSWORD,
                replace_on=(ident, fingerprint(n.name, str(n.address))),
                about=(n.name,),
                goes_with=None,
            ),
            Step(
                f"leave-{n.name}",
                n.name,
                StepKind.MEMBERSHIP,
                f"echo {shlex.quote(f'{n.name}: leaves the cluster before its VM goes')}\n",
                _leave_script(n.name, names),
                depends_on=(f"member-{n.name}",),
                replace_on=(fingerprint(n.name, str(n.address)),),
                about=(n.name,),
                # Skipped when the cluster goes whole (`pulumi destroy`, or a new cluster identity): no node leaves
                # first.
                goes_with="cluster-setup",
            ),
        ]
    steps.append(
        Step(
            "cluster-totem",
            first,
            StepKind.MEMBERSHIP,
            _totem_script(first, s.token_ms, names),
            _totem_delete(),
            depends_on=("cluster-start",),
            replace_on=(ident,),
            on_running_cluster=True,
        )
    )
    return steps


def _fence_location(dev: FenceDevice) -> Constraint:
    return Constraint(
        "rsc_location",
        {"id": f"location-{dev.id}-avoids-{dev.node}", "rsc": dev.id, "node": dev.node, "score": "-INFINITY"},
    )


def _fence_secret_script(secret: FenceSecret) -> str:
    """The fencing secret from stdin into a root-only file every node has (a device may run on any of them)."""
    if secret is FenceSecret.PASSWORD:
        target, write = PASSWORD_FILE, _read_one_secret() + 'printf \'%s\\n\' "$secret" > "$new"\n'
    else:
        target = SSH_KEY_FILE if secret is FenceSecret.SSH_KEY else XVM_KEY_FILE
        write = 'cat > "$new"\n'
    check = ""
    if secret is FenceSecret.SSH_KEY:
        check = (
            '[ -z "$(tail -c1 "$new")" ] || echo >> "$new"\n'
            'if ! ssh-keygen -y -f "$new" >/dev/null 2>&1; then\n'
            '  rm -f "$new"; echo "ha-lb: $ha_lb_step: fenceSshKey is not an unencrypted private key" >&2; exit 1\n'
            "fi\n"
        )
    script = (
        f"install -d -m 0700 {FENCE_DIR} {target.rsplit('/', 1)[0]}\n"
        f"new=$(mktemp {target}.XXXXXX)\n"  # mktemp: 0600 from the start
        f"{write}{check}"
        f'mv -f "$new" {target}\n'
    )
    if secret is FenceSecret.PASSWORD:
        # fence_ipmilan runs it and reads the password from its output: never in the CIB or on pcs's command line.
        script += (
            f"printf '%s\\n' '#!/bin/sh' 'exec cat {PASSWORD_FILE}' > {PASSWORD_SCRIPT}.new\n"
            f"chmod 0700 {PASSWORD_SCRIPT}.new; mv -f {PASSWORD_SCRIPT}.new {PASSWORD_SCRIPT}\n"
        )
    return script


def _fence_check_script(dev: FenceDevice, secret: FenceSecret) -> str:
    """The agent's own status action with the device's parameters (on stdin, as the fencer passes them), before the
    device goes into the CIB: the node is a running member, so anything but "on" is a device that cannot fence it.
    ("off" is what fence_virsh says when sudo or virsh fails on the hypervisor, and fence_virtd for a domain it does
    not know: a device that would report every fence done.)"""
    plug = [f"plug={dev.plug}"] if dev.plug else []
    options = [f"{k}={v}" for k, v in sorted(dev.params.items())] + plug + ["action=status"]
    hint = ""
    if secret is FenceSecret.SSH_KEY:
        hint = (
            f'  echo "ha-lb: authorize this key for {dev.params["username"]} on {dev.params["ip"]}: '
            f'$(ssh-keygen -y -f {SSH_KEY_FILE})" >&2\n'
        )
    return (
        # The fencing secret comes on stdin only so that a new one runs this check again; it is read from its file.
        "cat >/dev/null\n"
        "out=$(mktemp); trap 'rm -f \"$out\"' EXIT\n"
        f"rc=0; printf '%s\\n' {' '.join(shlex.quote(o) for o in options)} | timeout 120 {dev.agent} "
        '>"$out" 2>&1 || rc=$?\n'
        'if [ "$rc" -ne 0 ]; then\n'
        '  tail -n 5 "$out" >&2\n'
        f'  echo "ha-lb: {dev.id} cannot see {dev.node} running (status exit $rc, 2: reported off): check '
        'cluster.fencing and that the hypervisor or BMC accepts the nodes" >&2\n'
        f"{hint}"
        "  exit 1\n"
        "fi\n"
        f'echo "{dev.id}: {dev.node} is on"\n'
    )


def _fencing_steps(s: Settings) -> list[Step]:
    """For each node, once it is a member, its device proven with the agent's status action, then put in the CIB,
    never to run on the node it fences (that node cannot fence itself)."""
    devices = fence_devices(s)
    if not devices:
        return []
    first = s.first_node.name
    ident = cluster_identity(s)
    secret = secret_for(s)
    steps: list[Step] = []
    secrets = tuple(f"fence-secret-{n.name}" for n in s.node_list)
    for dev in devices:
        p, loc = fence_primitive(dev, s.cluster.fencing.failure_timeout), _fence_location(dev)
        # Proven first: a device whose new parameters cannot fence never replaces one that can.
        steps.append(
            Step(
                f"fence-check-{dev.node}",
                dev.checked_from,
                StepKind.CHECK,
                _fence_check_script(dev, secret),
                None,
                depends_on=(f"member-{dev.node}", *secrets),
                stdin=Stdin.FENCE_SECRET,  # a new secret (a changed stdin) runs the check again
                replace_on=(ident,),
            )
        )
        steps.append(
            Step(
                f"fence-{dev.node}",
                first,
                StepKind.CIB,
                ensure_primitive(p) + ensure_constraint(loc),
                remove_constraint(loc.id) + remove_primitive(p),
                # Added once its node is a member: before, the CIB does not know the node.
                depends_on=("cluster-enable", f"fence-check-{dev.node}"),
                replace_on=(ident,),
            )
        )
    return steps


def cluster_properties(s: Settings) -> dict[str, str]:
    return {
        "stonith-enabled": str(s.stonith_enabled).lower(),
        "no-quorum-policy": s.cluster.no_quorum_policy,
        "dc-deadtime": s.cluster.dc_deadtime,
        # With a quorum device in corosync.conf, 0 (`_property_steps`, `quorum-device`).
        "priority-fencing-delay": s.cluster.fencing.priority_delay,
        "cluster-recheck-interval": s.cluster.recheck_interval,
        "transition-delay": s.cluster.transition_delay,
    }


def _set_properties(props: Mapping[str, str]) -> str:
    # crm_attribute, one property each: `pcs property set` (0.11) first runs every daemon's metadata to check them
    # (0.7 s on a quiet node, 2.8 s on a busy 3-node lab's, on bring-up's path) and refuses a time below a second
    # (`transitionDelay: 50ms`, `dcDeadtime: 500ms`); the settings model has checked every value already.
    return "".join(f"{q(_ha_lb_attribute(k, '--update', v))}\n" for k, v in props.items())


def resource_defaults(s: Settings) -> dict[str, str]:
    return {"resource-stickiness": str(s.cluster.stickiness)}


def _property_steps(s: Settings, fence_ids: Sequence[str]) -> list[Step]:
    first = s.first_node.name
    ident = cluster_identity(s)
    props, defaults = cluster_properties(s), resource_defaults(s)
    names = " ".join(n.name for n in s.node_list)
    set_props = _set_properties(props)
    if s.arbiter is not None:
        # Once the cluster has its quorum device (the `quorum-device` step, last), only the half given the
        # arbiter's vote has quorum and may fence: no race for priority-fencing-delay to settle (Pacemaker would
        # still delay the VIP's node: it counts nodes, not votes, and 1 of 2 online is no majority). Until then,
        # and once the device is gone, two_node again: the configured delay.
        pfd = shlex.quote(s.cluster.fencing.priority_delay)
        set_props = (
            _set_properties({k: v for k, v in props.items() if k != "priority-fencing-delay"})
            + f"if {_QDEVICE_IN_CONF}; then pfd=0; else pfd={pfd}; fi\n"
            + q(_ha_lb_attribute("priority-fencing-delay", "--update"))
            + ' "$pfd"\n'
            # What the device's delete puts back, as configured now (not when the device was added).
            + q(_ha_lb_attribute(FENCE_DELAY_PROPERTY, "--update", s.cluster.fencing.priority_delay))
            + "\n"
        )
    return [
        Step(
            "cluster-properties",
            first,
            StepKind.CIB,
            set_props
            # The stack's nodes, for the membership steps (a node's mark is stale once it left the stack).
            + q(_stack_attribute("--update", names))
            + "\n",
            "".join(f"{q(_ha_lb_attribute(k, '--delete'))} || :\n" for k in props)
            + q(_stack_attribute("--delete"))
            + " || :\n"
            + q(_ha_lb_attribute(FENCE_DELAY_PROPERTY, "--delete"))
            + " || :\n",
            depends_on=("cluster-enable", *fence_ids),
            replace_on=(ident,),
        ),
        Step(
            "resource-defaults",
            first,
            StepKind.CIB,
            q(pcs.resource_defaults_update(defaults)) + "\n",
            q(pcs.resource_defaults_update(dict.fromkeys(defaults, ""))) + "\n",
            depends_on=("cluster-enable",),
            replace_on=(ident,),
        ),
    ]


def _resource_steps(s: Settings) -> list[Step]:
    """The VIP, and HAProxy. With `with-vip`, HAProxy is created stopped: started before its constraints, it could
    start away from the VIP, fail to bind and reach fail-count INFINITY there. With `everywhere` it binds the VIP on
    any node (ip_nonlocal_bind) and is meant to run on every node: it starts as soon as it exists, so its start
    (Pacemaker confirms a systemd start 2 s later) runs beside the constraints' steps, not after them."""
    first = s.first_node.name
    ident = cluster_identity(s)
    vip, hap, off_dc = vip_primitive(s), haproxy_primitive(s), vip_off_dc(s)
    after_properties = ("cluster-properties", "resource-defaults")
    return [
        Step(
            "vip",
            first,
            StepKind.CIB,
            # Its first start obeys the DC rule: created held, the rule added, then started.
            ensure_primitive(vip, held=off_dc is not None)
            + (ensure_constraint(off_dc) if off_dc else remove_constraint(VIP_OFF_DC_ID))
            + release_held(vip.id),
            remove_constraint(VIP_OFF_DC_ID) + remove_primitive(vip),
            depends_on=after_properties,
            replace_on=(ident,),
            owner="vip",
        ),
        Step(
            "haproxy-resource",
            first,
            StepKind.CIB,
            ensure_primitive(hap, disabled=s.placement == "with-vip"),
            remove_primitive(hap),
            depends_on=(*after_properties, *(f"haproxy-config-{n.name}" for n in s.node_list)),
            replace_on=(ident, s.placement),
        ),
    ]


def constraints(s: Settings) -> list[Constraint]:
    """How the VIP and HAProxy are tied together, for the placement."""
    hap = haproxy_primitive(s)
    if s.placement == "everywhere":
        # The VIP goes where an HAProxy instance runs; HAProxy is already up on the survivors when the VIP moves.
        col = {"id": "colocation-vip-with-haproxy-clone", "rsc": VIP_ID, "with-rsc": hap.top_id, "score": "INFINITY"}
        # Optional: order the first start only; a restart of one instance must not restart the VIP.
        order = {"id": "order-haproxy-clone-then-vip", "first": hap.top_id, "then": VIP_ID, "kind": "Optional"}
    else:
        col = {"id": "colocation-haproxy-with-vip", "rsc": HAPROXY_ID, "with-rsc": VIP_ID, "score": "INFINITY"}
        order = {"id": "order-vip-then-haproxy", "first": VIP_ID, "then": HAPROXY_ID, "kind": "Mandatory"}
    return [
        Constraint("rsc_colocation", col),
        Constraint("rsc_order", {**order, "first-action": "start", "then-action": "start"}),
    ]


VIP_OFF_DC_ID = "location-vip-off-dc"


def vip_off_dc(s: Settings) -> Constraint | None:
    """The VIP placed off the DC (Pacemaker's controller), where another node can take it: when the VIP's node dies,
    the DC survives and schedules its start at once, with no election and join first (about 0.1 s sooner at 5
    nodes). A point for every node that is not the DC, rather than a point off the DC: a negative score bans a node,
    and a lone survivor is the DC. One point only breaks ties: below the stickiness, it never moves a running VIP (a
    node that becomes DC keeps it); with a stickiness of 0 it would move it, and at 1 only Pacemaker's tie-break
    (the running node, if its score is above 0) would keep it, so below 2 there is none."""
    if s.cluster.stickiness < 2:
        return None
    rule = Rule(
        {"id": f"{VIP_OFF_DC_ID}-rule", "score": "1"},
        {"id": f"{VIP_OFF_DC_ID}-expr", "attribute": "#is_dc", "operation": "eq", "value": "false"},
    )
    return Constraint("rsc_location", {"id": VIP_OFF_DC_ID, "rsc": VIP_ID}, rule)


def _constraint_steps(s: Settings) -> list[Step]:
    """The constraints, then HAProxy enabled: with `with-vip`, only now can it start, and only where they allow."""
    first = s.first_node.name
    ident = cluster_identity(s)
    hap = haproxy_primitive(s)
    steps = [
        Step(
            c.id,
            first,
            StepKind.CIB,
            ensure_constraint(c),
            remove_constraint(c.id),
            depends_on=("vip", "haproxy-resource"),
            replace_on=(ident,),
        )
        for c in constraints(s)
    ]
    exists = f"//*[@id='{hap.top_id}']"
    stopped = f"//*[@id='{hap.top_id}' or @id='{hap.id}']/meta_attributes/nvpair[@name='target-role']"
    steps.append(
        Step(
            "haproxy-enable",
            first,
            StepKind.CIB,
            # pcs only where there is a stop to lift (with `everywhere`, HAProxy was created started).
            f"if cib_has {shlex.quote(stopped)}; then {q(pcs.resource_enable(hap.top_id))}; fi\n",
            f"if cib_has {shlex.quote(exists)}; then {q(pcs.resource_disable(hap.top_id))}; fi\n",
            depends_on=tuple(st.id for st in steps),
            replace_on=(ident, s.placement),
        )
    )
    return steps


def build_plan(s: Settings) -> Plan:
    """Every step of the HA stack for these settings, in an order that satisfies their dependencies: node steps,
    cluster formation, membership, fencing, properties, resources, constraints."""
    fencing = _fencing_steps(s)
    return Plan(
        (
            *_node_steps(s),
            *_formation_steps(s),
            *_membership_steps(s),
            *fencing,
            *_property_steps(s, [f.id for f in fencing if f.kind is StepKind.CIB]),
            *_resource_steps(s),
            *_constraint_steps(s),
            # Last: the VIP serves before it (its corosync.conf rewrite holds the cluster's lock for seconds).
            *_quorum_device_steps(s),
        )
    )


def _spec_xpath(p: Primitive) -> str:
    """The resource at its current definition: its fingerprint in its meta attributes."""
    spec = fingerprint(pcs.primitive_create(p))
    return f"{_meta_xpath(p.id)}{_predicates({'name': pcs.SPEC_META, 'value': spec})}"


def cib_expectations(s: Settings) -> list[Expectation]:
    """What the CIB holds once the plan is applied: every resource at its current definition, every constraint,
    property and default, HAProxy enabled. A live CIB missing one has drifted (a lost concurrent write, a hand edit)."""
    hap = haproxy_primitive(s)
    fences = [fence_primitive(d, s.cluster.fencing.failure_timeout) for d in fence_devices(s)]
    out = [Expectation(f"resource {p.id} (as defined)", _spec_xpath(p)) for p in (*fences, vip_primitive(s), hap)]
    if hap.clone:
        out.append(Expectation(f"clone {hap.top_id}", f"//clone[@id='{hap.top_id}']/primitive[@id='{hap.id}']"))
    off_dc = vip_off_dc(s)
    located = [*(_fence_location(d) for d in fence_devices(s)), *constraints(s), *([off_dc] if off_dc else [])]
    out += [Expectation(f"constraint {c.id}", c.xpath) for c in located]
    if off_dc is None:
        out.append(Expectation(f"constraint {VIP_OFF_DC_ID}", _constraint_id_xpath(VIP_OFF_DC_ID), present=False))
    out.append(Expectation(f"resource {VIP_ID} not held (its first start released)", held_xpath(VIP_ID), present=False))
    out += [
        Expectation(f"property {k}={v}", f"//crm_config//nvpair[@name='{k}'][@value='{v}']")
        for k, v in cluster_properties(s).items()
        if not (s.arbiter and k == "priority-fencing-delay")
    ]
    if s.arbiter:
        pfd = s.cluster.fencing.priority_delay
        out.append(
            Expectation(
                f"property priority-fencing-delay=0 (quorum device) or {pfd}",
                f"//crm_config//nvpair[@name='priority-fencing-delay'][@value='0' or @value='{pfd}']",
            )
        )
    out += [
        Expectation(f"resource default {k}={v}", f"//rsc_defaults//nvpair[@name='{k}'][@value='{v}']")
        for k, v in resource_defaults(s).items()
    ]
    out.append(
        Expectation(
            f"{hap.top_id} enabled",
            f"//*[@id='{hap.top_id}']/meta_attributes/nvpair[@name='target-role'][@value='Stopped']",
            present=False,
        )
    )
    return out
