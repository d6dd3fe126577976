"""Every offline check of one stack definition, each judged on parsed results, not on exit codes alone."""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from components import pcs
from components.fencing import fence_devices
from components.host_keys import HostKey
from components.plan import (
    COROSYNC_CONF,
    HAPROXY_ID,
    VIP_ID,
    Plan,
    StepKind,
    build_plan,
    cib_expectations,
    knet_link_edit,
    knet_ping_ms,
    qdevice_heuristic_for,
    qdevice_timeout_ms,
    render_script,
    vip_off_dc,
)
from components.render import render_haproxy_cfg, render_meta_data, render_network_config, render_user_data
from components.settings import Settings
from procs.runner import Completed, Runner, run

from .offline import (
    CLUSTER_SHIM,
    OfflineCib,
    Placement,
    normalized_configuration,
    primitives,
    started_in_transition,
    waits_for_fencing,
)
from .report import Report

# Placeholders: the offline checks need the shape of the secrets, never their values.
PLACEHOLDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVerifyVerifyVerifyVerifyVerifyVerifyVer verify"
PLACEHOLDER_STATS_PASSWORD = "Verify-Only-Stats-0"
PLACEHOLDER_HOST_KEY = HostKey(
    "-----BEGIN OPENSSH PRIVATE KEY-----\nVmVyaWZ5LW9ubHk=\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVerifyHostVerifyHostVerifyHostVerifyHostVe",
)
TEST_NET = "192.0.2."  # RFC 5737 documentation range: names resolve there, nothing is ever sent


@dataclass(frozen=True)
class NodeFiles:
    """What one node receives: cloud-init files and haproxy.cfg."""

    user_data: str
    meta_data: str
    network_config: str
    haproxy_cfg: str


def render_first_node(s: Settings) -> NodeFiles:
    node = s.first_node
    return NodeFiles(
        user_data=render_user_data(s, node, PLACEHOLDER_KEY, PLACEHOLDER_HOST_KEY),
        meta_data=render_meta_data(s, node),
        network_config=render_network_config(s, node),
        haproxy_cfg=render_haproxy_cfg(s, PLACEHOLDER_STATS_PASSWORD),
    )


def duration_ms(text: str) -> int:
    """Pacemaker duration to milliseconds ("5s" -> 5000, "1min" -> 60000; no unit means seconds)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|min|h)?", text)
    if m is None:
        raise ValueError(f"not a duration: {text}")
    factor = {"ms": 1, "s": 1000, None: 1000, "m": 60000, "min": 60000, "h": 3600000}[m.group(2)]
    return int(m.group(1)) * factor


def verify_stack(
    s: Settings,
    label: str,
    *,
    plan: Plan | None = None,
    files: NodeFiles | None = None,
    runner: Runner = run,
    pcs_socket: str | None = None,
) -> Report:
    """Prove the stack's definition with the real tools; `plan` and `files` default to what the program builds."""
    plan = plan or build_plan(s)
    files = files or render_first_node(s)
    report = Report(label)
    with tempfile.TemporaryDirectory(prefix="ha-lb-verify-") as tmp:
        work = Path(tmp)
        cib = OfflineCib(work, runner, pcs_socket)
        applied = check_cib(report, cib, s, plan)
        if applied is not None:
            check_scheduler(report, cib, s)
            check_idempotent_and_undo(report, cib, plan)
        check_corosync(report, s, plan, runner, work)
        check_haproxy(report, s, files.haproxy_cfg, runner, work)
        check_cloud_init(report, s, files, runner, work)
    return report


# --- CIB ---------------------------------------------------------------------------------------------------------


def check_cib(report: Report, cib: OfflineCib, s: Settings, plan: Plan) -> Path | None:
    nodes = [n.name for n in s.node_list]
    cib.create_empty("base.xml", nodes)
    applied = cib.copy("base.xml", "applied.xml")
    steps = plan.of_kind(StepKind.CIB)
    live_only = [st.id for st in plan.steps if st.kind is not StepKind.CIB]
    runs = cib.apply(applied, steps)
    failed = [r for r in runs if not r.result.ok]
    if failed or len(runs) != len([st for st in steps if st.create]):
        bad = failed[0]
        report.add("cib", "plan applied with pcs -f", False, f"step {bad.step.id}: {bad.result.tail()}")
        return None
    report.add(
        "cib",
        "plan applied with pcs -f",
        True,
        f"{len(runs)} CIB steps on {len(nodes)} nodes; live-only steps not run: {len(live_only)} "
        f"({', '.join(sorted({st.kind.value for st in plan.steps if st.kind is not StepKind.CIB}))})",
    )
    drift = cib.drift(applied, cib_expectations(s))
    report.add("cib", "holds what the plan declares", not drift, "; ".join(drift) if drift else "no drift")
    verify = cib.run(["crm_verify", "-x", str(applied)])
    report.add("cib", "crm_verify", verify.ok, verify.tail() if not verify.ok else "valid")
    missing = []
    agents = sorted({agent for _, agent in primitives(applied)})
    for agent in agents:
        if agent.startswith("systemd:"):
            unit = agent.split(":", 1)[1] + ".service"
            if not any(Path(d, unit).exists() for d in ("/lib/systemd/system", "/usr/lib/systemd/system")):
                missing.append(agent)
        elif not cib.run(["crm_resource", "--show-metadata", agent]).ok:
            missing.append(agent)
    report.add(
        "cib", "resource agents exist", not missing, f"missing: {', '.join(missing)}" if missing else ", ".join(agents)
    )
    return applied


def _ha_nodes(placement: Placement) -> set[str]:
    return placement.get(HAPROXY_ID, set())


def _serving(s: Settings, placement: Placement) -> tuple[bool, str]:
    """The VIP on one node and HAProxy serving there (and, cloned, on every node that is up)."""
    vip = placement.get(VIP_ID, set())
    ha = _ha_nodes(placement)
    if len(vip) != 1:
        return False, f"VIP active on {sorted(vip) or 'no node'}"
    (where,) = vip
    if where not in ha:
        return False, f"VIP on {where} but HAProxy on {sorted(ha) or 'no node'}"
    if s.placement == "with-vip" and ha != {where}:
        return False, f"HAProxy on {sorted(ha)}, expected only with the VIP on {where}"
    return True, f"VIP and HAProxy on {where}" + (f", HAProxy on {sorted(ha)}" if s.placement == "everywhere" else "")


def _vip_at(p: Placement, done: Completed) -> str:
    """Where a simulation put the VIP, or why it did not run."""
    return f"VIP on {sorted(p.get(VIP_ID, set())) or 'no node'}" if p else done.tail()


def _check_vip_off_dc(report: Report, cib: OfflineCib, s: Settings) -> None:
    """Whichever node is DC, the VIP starts elsewhere; once running, it stays where it is when its node becomes DC."""
    nodes = [n.name for n in s.node_list]
    for dc in nodes[:2]:
        start = cib.copy("applied.xml", f"dc-{dc}.xml")
        cib.set_dc(start, dc)
        p, done = cib.simulate(start, cib.path(f"dc-{dc}-s0.xml"))
        vip = p.get(VIP_ID, set())
        report.add(
            "scheduler",
            f"{dc} is DC: the VIP starts elsewhere",
            len(vip) == 1 and dc not in vip,
            _vip_at(p, done),
        )
        if len(vip) != 1:
            return
    (home,) = vip
    if len(nodes) >= 3:
        p, done = cib.simulate(cib.path(f"dc-{dc}-s0.xml"), cib.path("dc-failover.xml"), fail=[home])
        vip = p.get(VIP_ID, set())
        report.add(
            "scheduler",
            f"{dc} is DC and the VIP's node {home} fails: the VIP moves to a node that is not DC",
            len(vip) == 1 and not vip & {dc, home},
            _vip_at(p, done),
        )
    # The rule only prefers: the DC, left alone, must still take the VIP (a negative score there would ban it).
    others = [n for n in nodes if n != dc]
    p, done = cib.simulate(cib.path(f"dc-{dc}-s0.xml"), cib.path("dc-alone.xml"), fail=others)
    report.add(
        "scheduler",
        f"only {dc}, the DC, is left (quorum as the CIB says): the VIP runs there",
        p.get(VIP_ID) == {dc},
        _vip_at(p, done),
    )
    moved = cib.copy(f"dc-{dc}-s0.xml", "dc-moved.xml")
    cib.set_dc(moved, home)
    p, done = cib.simulate(moved, cib.path("dc-moved-s1.xml"))
    report.add(
        "scheduler",
        f"the VIP's node {home} becomes DC: the VIP stays (the rule is below the stickiness)",
        p.get(VIP_ID) == {home} and not started_in_transition(done.stdout, VIP_ID, home),
        _vip_at(p, done),
    )


def check_scheduler(report: Report, cib: OfflineCib, s: Settings) -> None:
    facts: dict[str, Placement] = {}
    report.facts["placements"] = facts
    nodes = [n.name for n in s.node_list]
    applied, s0 = cib.path("applied.xml"), cib.path("s0.xml")

    p0, done = cib.simulate(applied, s0)
    facts["all-up"] = p0
    ok, detail = _serving(s, p0)
    if s.placement == "everywhere" and ok and _ha_nodes(p0) != set(nodes):
        ok, detail = False, f"cloned HAProxy on {sorted(_ha_nodes(p0))}, expected every node"
    if not report.add("scheduler", "all nodes up: VIP with HAProxy", ok, detail or done.tail()):
        return
    (home,) = p0[VIP_ID]
    if vip_off_dc(s) is not None:
        _check_vip_off_dc(report, cib, s)
    for dev in fence_devices(s):
        where = p0.get(dev.id, set())
        report.add(
            "scheduler",
            f"fencing device {dev.id} runs, not on {dev.node}",
            len(where) == 1 and dev.node not in where,
            f"on {sorted(where) or 'no node'}",
        )
    if s.placement == "everywhere":
        # An instance failing where the VIP is not must leave the VIP alone (hence the Optional order).
        other = next(n for n in nodes if n != home)
        op = f"{HAPROXY_ID}_monitor_{duration_ms(s.cluster.haproxy_monitor.interval)}@{other}=7"
        p, done = cib.simulate(s0, cib.path("other.xml"), inject=[op])
        facts["haproxy-fails-away-from-vip"] = p
        untouched = p.get(VIP_ID) == {home} and not started_in_transition(done.stdout, VIP_ID, home)
        report.add(
            "scheduler",
            f"HAProxy fails on {other}: the VIP stays on {home}, not restarted",
            untouched and started_in_transition(done.stdout, HAPROXY_ID, other),
            f"VIP on {sorted(p.get(VIP_ID, set()))}",
        )

    graph = cib.path("s1-graph.xml")
    p1, done = cib.simulate(s0, cib.path("s1.xml"), fail=[home], graph=graph)
    facts["vip-node-fails"] = p1
    ok, detail = _serving(s, p1)
    ok = ok and home not in p1[VIP_ID]
    report.add("scheduler", f"VIP's node {home} fails: both move to a survivor", ok, detail or done.tail())
    if s.stonith_enabled:
        fenced_first = graph.exists() and waits_for_fencing(graph.read_text(), VIP_ID, home)
        report.add(
            "scheduler",
            f"VIP's node {home} lost: the VIP starts elsewhere only once {home} is fenced",
            fenced_first,
            "the VIP's start waits for the fence" if fenced_first else "the VIP's start does not wait for a fence",
        )
    if ok:
        (moved_to,) = p1[VIP_ID]
        returning = cib.copy("s1.xml", "s1-rebooted.xml")
        cib.forget_history(returning, home)
        p2, done = cib.simulate(returning, cib.path("s2.xml"), up=[home])
        facts["failed-node-returns"] = p2
        ok2, detail = _serving(s, p2)
        report.add(
            "scheduler",
            f"{home} returns: resources stay on {moved_to} (stickiness)",
            ok2 and p2[VIP_ID] == {moved_to},
            detail,
        )
        if len(nodes) >= 3:
            p4, done = cib.simulate(cib.path("s1.xml"), cib.path("s4.xml"), fail=[moved_to])
            facts["second-node-fails"] = p4
            ok4, detail = _serving(s, p4)
            ok4 = ok4 and not (p4[VIP_ID] & {home, moved_to})
            report.add("scheduler", f"then {moved_to} fails too: served from a third node", ok4, detail or done.tail())

    # HAProxy's monitor fails on the VIP's node: restarted in place until migration-threshold, then moved away.
    op = f"{HAPROXY_ID}_monitor_{duration_ms(s.cluster.haproxy_monitor.interval)}@{home}=7"
    threshold = s.cluster.migration_threshold
    source = s0
    for failure in range(1, threshold + 1):
        target = cib.path(f"m{failure}.xml")
        p, done = cib.simulate(source, target, inject=[op])
        facts[f"haproxy-monitor-fails-{failure}"] = p
        source = target
        ok, detail = _serving(s, p)
        if failure < threshold:
            stays = ok and p[VIP_ID] == {home} and started_in_transition(done.stdout, HAPROXY_ID, home)
            if not stays:
                report.add(
                    "scheduler", f"HAProxy monitor failure {failure}/{threshold}: restarted in place", False, detail
                )
                return
        else:
            # Past the threshold HAProxy may not run on that node, so the VIP must leave it too.
            moved = ok and home not in p[VIP_ID] and home not in _ha_nodes(p)
            report.add(
                "scheduler",
                f"HAProxy monitor failures: restarted in place {threshold - 1}x, moved off {home} at {threshold}",
                moved,
                detail,
            )


# --- idempotency and undo -------------------------------------------------------------------------------------


def check_idempotent_and_undo(report: Report, cib: OfflineCib, plan: Plan) -> None:
    steps = plan.of_kind(StepKind.CIB)
    again = cib.copy("applied.xml", "again.xml")
    runs = cib.apply(again, steps)
    failed = [r for r in runs if not r.result.ok]
    diff = cib.run(["crm_diff", "-o", str(cib.path("applied.xml")), "-n", str(again)])
    ok = not failed and diff.returncode == 0 and not diff.stdout.strip()
    detail = (
        f"step {failed[0].step.id}: {failed[0].result.tail()}" if failed else ("no change" if ok else diff.stdout[:300])
    )
    report.add("cib", "plan applied twice: second run changes nothing (crm_diff)", ok, detail)

    undone = cib.copy("applied.xml", "undone.xml")
    runs = cib.apply(undone, list(reversed(steps)), delete=True)
    failed = [r for r in runs if not r.result.ok]
    same = normalized_configuration(undone) == normalized_configuration(cib.path("base.xml"))
    detail = (
        f"step {failed[0].step.id}: {failed[0].result.tail()}"
        if failed
        else ("empty again" if same else "objects left behind")
    )
    report.add("cib", "deletes in reverse order return the CIB to empty", not failed and same, detail)


# --- corosync -------------------------------------------------------------------------------------------------


def check_corosync(report: Report, s: Settings, plan: Plan, runner: Runner, work: Path) -> None:
    setup = plan.get("cluster-setup")
    conf = work / "corosync.conf"
    # The plan's own setup script, in a mount namespace where this machine's corosync.conf is out of sight.
    script = render_script(setup)
    inner = f"mount -t tmpfs tmpfs {shlex.quote(str(Path(COROSYNC_CONF).parent))} && exec bash -c {shlex.quote(script)}"
    env = {"PATH": f"{CLUSTER_SHIM}:/usr/sbin:/usr/bin:/sbin:/bin", "HA_LB_COROSYNC_OUT": str(conf)}
    made = runner(["unshare", "-m", "-n", "bash", "-c", inner], env=env)
    if not report.add(
        "corosync", "corosync.conf from the plan's cluster-setup step", made.ok and conf.exists(), made.tail()
    ):
        return
    shown = runner(["pcs", "cluster", "config", "--corosync_conf", str(conf), "--output-format=json"])
    data = json.loads(shown.stdout) if shown.ok else {}
    report.facts["corosync"] = data
    text = conf.read_text()
    two_node = re.search(r"^\s*two_node:\s*1\s*$", text, re.M) is not None
    expected_nodes = [(n.name, str(n.address)) for n in s.node_list]
    got_nodes = [(n["name"], n["addrs"][0]["addr"]) for n in data.get("nodes", [])]
    problems = []
    if data.get("cluster_name") != s.cluster.name:
        problems.append(f"cluster_name {data.get('cluster_name')}")
    if data.get("transport") != "KNET":
        problems.append(f"transport {data.get('transport')}")
    totem = data.get("totem_options", {})
    if totem.get("token") != str(s.token_ms):
        problems.append(f"token {totem.get('token')}")
    if totem.get("token_coefficient") != "0":  # else corosync adds 650 ms per node past two
        problems.append(f"token_coefficient {totem.get('token_coefficient')}")
    interval, timeout = knet_ping_ms(s.token_ms)
    link = data.get("links_options", {}).get("0", {})
    if (link.get("ping_interval"), link.get("ping_timeout")) != (str(interval), str(timeout)):
        problems.append(f"link 0 {link}")
    crypto = data.get("crypto_options", {})
    if not crypto.get("cipher") or crypto.get("cipher") == "none" or not crypto.get("hash"):
        problems.append(f"crypto {crypto}")
    if got_nodes != expected_nodes:
        problems.append(f"nodes {got_nodes}")
    if two_node != (len(expected_nodes) == 2):
        problems.append(f"two_node {'set' if two_node else 'missing'} with {len(expected_nodes)} nodes")
    report.add(
        "corosync",
        "knet, token, knet's ping, crypto, node addresses, two_node only for 2 nodes",
        not problems,
        "; ".join(problems)
        or f"token {s.token_ms} at every size, knet ping {interval}/{timeout} ms, "
        f"{crypto.get('cipher')}/{crypto.get('hash')}, {len(got_nodes)} nodes",
    )
    key = work / "authkey"
    runner(["corosync-keygen", "-l", "-k", str(key)])
    checked = corosync_test(s, text, key, work / "corosync-test.conf", runner)
    report.add("corosync", "corosync -t accepts it", checked.ok, checked.tail(3))
    check_link_edit(report, s, conf, data, runner, work, key)
    if s.arbiter is not None:
        check_quorum_device(report, s, text, runner, work, key)


def check_link_edit(
    report: Report, s: Settings, conf: Path, setup: object, runner: Runner, work: Path, key: Path
) -> None:
    """The totem step's knet edit, which a cluster made before it was set gets on a running cluster: the delete's
    edit takes the setup's ping options out, the create's puts them back, through pcs's own parser, and the result
    is the setup's configuration again."""
    edited = work / "corosync-link-edit.conf"
    edited.write_text(conf.read_text())

    def edit(ping: tuple[int, int] | None) -> dict[str, object]:
        done = runner(["bash", "-c", knet_link_edit(ping, "exit 1").replace(COROSYNC_CONF, str(edited))])
        shown = runner(["pcs", "cluster", "config", "--corosync_conf", str(edited), "--output-format=json"])
        return json.loads(shown.stdout) if done.ok and shown.ok else {}

    cleared = edit(None)
    restored = edit(knet_ping_ms(s.token_ms))
    checked = corosync_test(s, edited.read_text(), key, work / "corosync-link-edit-test.conf", runner)
    report.add(
        "corosync",
        "the totem step's knet edit: out and back in, the setup's configuration; corosync -t accepts it",
        cleared.get("links_options") == {} and restored == setup and checked.ok,
        f"without: {cleared.get('links_options')}; with: {restored.get('links_options')}; {checked.tail(2)}",
    )


def check_quorum_device(report: Report, s: Settings, conf: str, runner: Runner, work: Path, key: Path) -> None:
    """The quorum device step's own `pcs quorum device add`, on a copy of the setup's corosync.conf (pcs edits the
    file alone with --corosync_conf), then corosync -t on the result."""
    arb, qd = s.arbiter, s.cluster.quorum_device
    assert arb is not None and qd is not None
    with_device = work / "corosync-qdevice.conf"
    with_device.write_text(conf)
    heuristic = qdevice_heuristic_for(s)
    argv = pcs.quorum_device_add(
        str(arb.address), qd.algorithm, qdevice_timeout_ms(s), heuristic, corosync_conf=str(with_device)
    )
    added = runner(["unshare", "-n", *argv])
    if not report.add("corosync", "pcs quorum device add takes the arbiter", added.ok, added.tail(3)):
        return
    text = with_device.read_text()
    problems = []
    if re.search(r"^\s*two_node:", text, re.M):
        problems.append("two_node still set")
    wants = [f"host: {arb.address}", f"algorithm: {qd.algorithm}", f"timeout: {qdevice_timeout_ms(s)}"]
    if heuristic:
        wants += ["mode: sync", f"{s.vip.address}/32"]
    for want in wants:
        if want not in text:
            problems.append(f"no {want!r}")
    report.add(
        "corosync",
        "the device: the arbiter's address, the algorithm, its timeout, the VIP heuristic (ffsplit), no two_node",
        not problems,
        "; ".join(problems) or f"qnetd {arb.address}, {qd.algorithm}, timeout {qdevice_timeout_ms(s)} ms",
    )
    checked = corosync_test(s, text, key, work / "corosync-qdevice-test.conf", runner)
    report.add("corosync", "corosync -t accepts it with the quorum device", checked.ok, checked.tail(3))


def corosync_test(s: Settings, conf: str, key: Path, tested: Path, runner: Runner) -> Completed:
    """`corosync -t` on a corosync.conf given a key file, in a private network namespace where the first node's
    address is local (corosync -t wants one node address to be)."""
    tested.write_text(re.sub(r"(totem \{\n)", rf"\1    keyfile: {key}\n", conf, count=1))
    addr = str(s.first_node.address)
    inner = f"ip link set lo up && ip addr add {addr}/32 dev lo && corosync -t -c {shlex.quote(str(tested))}"
    return runner(["unshare", "-n", "sh", "-c", inner])


# --- HAProxy --------------------------------------------------------------------------------------------------


def check_haproxy(report: Report, s: Settings, cfg: str, runner: Runner, work: Path) -> None:
    hosts = ["127.0.0.1 localhost"]
    names = sorted({srv.address.rpartition(":")[0] for b in s.haproxy.backends for srv in b.servers})
    hosts += [f"{TEST_NET}{10 + i} {name}" for i, name in enumerate(names) if not re.fullmatch(r"[0-9.]+", name)]
    (work / "hosts").write_text("\n".join(hosts) + "\n")
    (work / "haproxy.cfg").write_text(cfg)
    # A private network namespace, backend names from a test hosts file and a resolver on its loopback (HAProxy
    # connects its resolvers' sockets while checking, and sends nothing): nothing resolves or connects outside.
    (work / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    inner = (
        'ip link set lo up && mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf '
        '&& exec haproxy -c -dW -f "$3"'
    )
    files = [str(work / f) for f in ("hosts", "resolv.conf", "haproxy.cfg")]
    done = runner(["unshare", "-n", "-m", "sh", "-c", inner, "sh", *files])
    problems = [ln for ln in (done.stdout + done.stderr).splitlines() if "[ALERT]" in ln or "[WARNING]" in ln]
    lines = cfg.splitlines()
    for i, problem in enumerate(problems):
        # Quote the line HAProxy points at: its message names the line, not always the word.
        at = re.search(r"haproxy\.cfg:(\d+)\]", problem)
        if at and 0 < int(at.group(1)) <= len(lines):
            problems[i] = f"{problem} [line {at.group(1)}: {lines[int(at.group(1)) - 1].strip()}]"
    report.add(
        "haproxy",
        "haproxy -c -dW (warnings fatal)",
        done.ok,
        " | ".join(problems) or done.tail(4) if not done.ok else "valid",
    )


# --- cloud-init -----------------------------------------------------------------------------------------------

_SCHEMA_KEYS = """
import json
from cloudinit.config.schema import get_schema
s = get_schema()
keys = set(s.get("properties", {}))
for sub in s.get("allOf", []):
    ref = sub.get("$ref", "").split("/")[-1]
    keys |= set(s.get("$defs", {}).get(ref, {}).get("properties", {}))
print(json.dumps(sorted(keys)))
"""


def check_cloud_init(report: Report, s: Settings, files: NodeFiles, runner: Runner, work: Path) -> None:
    node = s.first_node
    (work / "user-data").write_text(files.user_data)
    schema = runner(["cloud-init", "schema", "-c", str(work / "user-data")])
    report.add("cloud-init", "cloud-init schema: user-data", schema.ok, schema.tail(3))

    keys = runner(["/usr/bin/python3", "-c", _SCHEMA_KEYS])
    known = set(json.loads(keys.stdout)) if keys.ok else set()
    try:
        doc = yaml.safe_load(files.user_data) or {}
    except yaml.YAMLError as err:
        report.add("cloud-init", "user-data top-level keys known to cloud-init", False, f"not YAML: {err}")
        doc = {}
    else:
        unknown = sorted(set(doc) - known)
        report.add(
            "cloud-init",
            "user-data top-level keys known to cloud-init",
            bool(known) and not unknown,
            f"unknown: {', '.join(unknown)}" if unknown else f"{len(doc)} keys",
        )

    (work / "network-config").write_text(files.network_config)
    out = work / "net-out"
    net_convert = ["cloud-init", "devel", "net-convert", "-k", "yaml", "-O", "eni", "-D", "debian"]
    conv = runner([*net_convert, "-p", str(work / "network-config"), "-d", str(out)])
    eni = out / "etc/network/interfaces.d/50-cloud-init"
    rendered = eni.read_text() if conv.ok and eni.exists() else ""
    want = f"address {node.address}/{s.network.cidr.prefixlen}"
    ok = conv.ok and f"iface {s.network.interface} inet static" in rendered and want in rendered
    report.add(
        "cloud-init",
        "network-config rendered by cloud-init (static, by MAC)",
        ok,
        conv.tail(2) if not conv.ok else want,
    )

    try:
        meta = yaml.safe_load(files.meta_data) or {}
    except yaml.YAMLError:
        meta = {}
    report.add(
        "cloud-init",
        "meta-data: instance-id and hostname",
        bool(meta.get("instance-id")) and meta.get("local-hostname") == node.name,
        str(meta),
    )
