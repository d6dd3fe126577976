"""The plan of steps: order, dependencies, kinds, secrets kept off command lines, and placements."""

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from components.plan import (
    CLUSTER_START_WAIT_S,
    CLUSTER_STOPPED_S,
    COROSYNC_CONF,
    MEMBERSHIP_WAIT_S,
    RESTART_DROPIN,
    RESTART_DROPIN_LINES,
    Plan,
    Stdin,
    StepKind,
    _joined_prelude,
    _lock_prelude,
    build_plan,
    cib_expectations,
    knet_ping_ms,
    remote_command,
    render_script,
)
from components.settings import load_settings


def plan_for(**cluster: Any) -> Plan:
    """A plan for 10.0.0.0/24; HAProxy colocated with the VIP unless a placement is given."""
    nodes = cluster.pop("nodes", 2)
    uri = cluster.pop("uri", "qemu:///system")
    cluster.setdefault("placement", "with-vip")
    return build_plan(
        load_settings(
            {
                "vip": {"address": "10.0.0.100"},
                "network": {"cidr": "10.0.0.0/24"},
                "nodes": {"count": nodes},
                "cluster": cluster,
                "libvirt": {"uri": uri},
            }
        )
    )


def deps_closure(plan: Plan, step_id: str) -> set[str]:
    out: set[str] = set()
    todo = [step_id]
    while todo:
        for d in plan.get(todo.pop()).depends_on:
            if d not in out:
                out.add(d)
                todo.append(d)
    return out


@pytest.mark.parametrize("nodes", [2, 3, 5])
def test_per_node_steps_and_one_time_steps_on_the_first_node(nodes: int) -> None:
    plan = plan_for(nodes=nodes)
    for prefix in ("wait", "hacluster-password", "haproxy-config", "cib-seed"):
        assert [s.node for s in plan.steps if s.id.startswith(prefix + "-")] == [f"lb{i}" for i in range(1, nodes + 1)]
    assert {s.node for s in plan.of_kind(StepKind.AUTH, StepKind.CLUSTER, StepKind.CIB)} == {"lb1"}


def test_dependencies_put_the_vip_after_cluster_start_and_enable_after_constraints() -> None:
    plan = plan_for()
    assert {"cluster-setup", "cluster-start", "host-auth", "cluster-properties"} <= deps_closure(plan, "vip")
    assert {"cib-seed-lb1", "cib-seed-lb2"} == set(plan.get("cluster-start").depends_on)
    assert "cluster-setup" in plan.get("cib-seed-lb1").depends_on  # setup clears the nodes' cluster files
    assert {"colocation-haproxy-with-vip", "order-vip-then-haproxy"} == set(plan.get("haproxy-enable").depends_on)
    assert {"haproxy-config-lb1", "haproxy-config-lb2"} <= set(plan.get("haproxy-resource").depends_on)
    assert {"hacluster-password-lb1", "hacluster-password-lb2"} <= set(plan.get("host-auth").depends_on)


def test_every_step_that_changes_something_has_a_delete() -> None:
    plan = plan_for()
    for step in plan.steps:
        if step.id.startswith("member-"):  # a join is undone by its node's leave step
            assert step.delete is None and plan.get(step.id.replace("member-", "leave-", 1)).delete
            continue
        assert (step.delete is None) == (step.kind in (StepKind.WAIT, StepKind.CHECK)), step.id


def test_secrets_travel_on_stdin_only() -> None:
    plan = plan_for()
    assert {s.id for s in plan.steps if s.stdin is Stdin.HACLUSTER_PASSWORD} == {
        "host-auth",
        "hacluster-password-lb1",
        "hacluster-password-lb2",
        "member-lb1",
        "member-lb2",
    }
    assert plan.get("host-auth").create.rstrip().endswith('-u hacluster <<<"$secret"')
    for step in plan.steps:
        for line in (step.create + (step.delete or "")).splitlines():
            if "pcs " in line:
                assert not {"-p", "--password"} & set(line.split()), line
            # Never piped in: a pcs that exits before reading would kill the writer with SIGPIPE, and under
            # pipefail the step would fail with 141 (seen at random in the member step's test).
            assert not ("$secret" in line and "|" in line.replace("||", "")), line


def test_haproxy_is_created_disabled_and_constraints_have_explicit_ids() -> None:
    plan = plan_for()
    assert "--disabled" in plan.get("haproxy-resource").create
    assert 'id="colocation-haproxy-with-vip"' in plan.get("colocation-haproxy-with-vip").create
    assert "pcs resource enable haproxy" in plan.get("haproxy-enable").create


def test_everywhere_placement_clones_haproxy_and_colocates_the_vip_with_it() -> None:
    plan = plan_for(placement="everywhere")
    assert " clone" in plan.get("haproxy-resource").create
    # It binds the VIP anywhere and belongs everywhere: it starts as it is created, beside the constraints' steps.
    assert "--disabled" not in plan.get("haproxy-resource").create
    colocation = plan.get("colocation-vip-with-haproxy-clone").create
    assert 'rsc="vip" with-rsc="haproxy-clone" score="INFINITY"' in colocation
    assert 'kind="Optional"' in plan.get("order-haproxy-clone-then-vip").create
    assert "ip_nonlocal_bind" in plan.get("haproxy-config-lb1").create
    assert "ip_nonlocal_bind" not in plan_for().get("haproxy-config-lb1").create


def test_fencing_devices_avoid_the_node_they_fence_and_are_proven_before_stonith_is_enabled() -> None:
    plan = plan_for(nodes=3)
    step = plan.get("fence-lb2")
    assert "pcs stonith create fence-lb2 fence_virsh" in step.create and "pcmk_host_list=lb2" in step.create
    # The fencer passes the agent port=<domain> from the host map: a plug beside it would race it.
    assert "pcmk_host_map=lb2:ha-lb-lb2" in step.create and "plug=" not in step.create
    assert "identity_file=/etc/ha-lb/fence/id_ssh" in step.create
    assert (
        '<rsc_location id="location-fence-lb2-avoids-lb2" rsc="fence-lb2" node="lb2" score="-INFINITY" />'
        in step.create
    )
    # A device banned for failing (its hypervisor unreachable a minute) may run, and fence, again: never for good.
    assert "meta failure-timeout=2min" in step.create
    assert "meta failure-timeout=30s" in plan_for(nodes=3, fencing={"failureTimeout": "30s"}).get("fence-lb2").create
    # Proven first (with every node's key in place, its node a member), then put in the CIB.
    check = plan.get("fence-check-lb2")
    assert check.node == "lb3" and check.kind is StepKind.CHECK and "action=status" in check.create
    assert "plug=ha-lb-lb2" in check.create  # the agent run by hand needs the domain itself
    assert {"member-lb2", "fence-secret-lb1", "fence-secret-lb3"} <= set(check.depends_on)
    # A new fencing secret (its stdin changed) runs the check again, after the secret steps wrote it.
    assert check.stdin is Stdin.FENCE_SECRET
    assert {"cluster-enable", "fence-check-lb2"} <= set(step.depends_on)
    assert {"fence-lb1", "fence-lb2", "fence-lb3"} <= set(plan.get("cluster-properties").depends_on)
    props = plan.get("cluster-properties").create
    assert "--name stonith-enabled --update true" in props and "--name priority-fencing-delay --update 5s" in props
    assert "priority=1" in plan.get("vip").create  # the VIP's holder wins a two-node fence race


@pytest.mark.parametrize(("rc", "ok"), [(0, True), (2, False), (1, False)], ids=["on", "reported-off", "error"])
def test_the_fence_check_takes_only_on_for_a_running_member(tmp_path: Path, rc: int, ok: bool) -> None:
    # fence_virsh says "off" when sudo or virsh fails on the hypervisor, and fence_virtd for a domain it does not
    # know: such a device would report every fence done, so only "on" passes.
    agent = tmp_path / "fence_virsh"
    agent.write_text(f"#!/bin/sh\ncat > {tmp_path}/options\nexit {rc}\n")
    agent.chmod(0o755)
    keygen = tmp_path / "ssh-keygen"
    keygen.write_text("#!/bin/sh\necho ssh-ed25519 AAAAPUBLIC\n")
    keygen.chmod(0o755)
    script = render_script(plan_for().get("fence-check-lb1"))
    done = subprocess.run(
        ["bash", "-c", script],
        input="the-secret\n",
        capture_output=True,
        text=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert (done.returncode == 0) == ok, done.stderr
    assert "the-secret" not in (tmp_path / "options").read_text()  # the agent reads its password from the file
    assert "plug=ha-lb-lb1" in (tmp_path / "options").read_text().splitlines()
    if not ok:
        assert "authorize this key for root on 10.0.0.1: ssh-ed25519 AAAAPUBLIC" in done.stderr


def test_a_changed_fence_device_is_replaced_not_updated() -> None:
    # `pcs stonith update` would keep a parameter the new definition dropped, and cannot change the agent.
    create = plan_for(fencing={"agent": "fence_xvm"}).get("fence-lb1").create
    assert "pcs stonith delete fence-lb1" in create and "stonith update" not in create


@pytest.mark.parametrize(
    ("uri", "virsh", "expected"),
    [
        ("qemu:///system", {}, "ip=10.0.0.1 identity_file=/etc/ha-lb/fence/id_ssh username=root"),
        ("qemu+ssh://ops@kvm1.example/system", {}, "username=ops"),
        ("qemu+ssh://ops@kvm1.example/system", {"user": "root", "address": "10.0.0.2"}, "ip=10.0.0.2"),
    ],
)
def test_fence_virsh_is_derived_from_the_libvirt_uri(uri: str, virsh: dict[str, str], expected: str) -> None:
    create = plan_for(fencing={"virsh": virsh}, uri=uri).get("fence-lb1").create
    params = " ".join(sorted(w for w in create.split() if "=" in w and not w.startswith(("pcmk", "ha-lb", "id="))))
    for part in expected.split():
        assert part in params.split(), params
    if "username=ops" in expected:
        assert "use_sudo=1" in params and "ip=kvm1.example" in params


def test_fence_secret_steps_write_root_only_files_and_refuse_a_second_line(tmp_path: Path) -> None:
    plan = plan_for(fencing={"agent": "fence_ipmilan", "ipmi": {"addresses": {"lb1": "10.0.9.1", "lb2": "10.0.9.2"}}})
    step = plan.get("fence-secret-lb1")
    assert step.stdin is Stdin.FENCE_SECRET and step.kind is StepKind.NODE
    script = render_script(step).replace("/etc/ha-lb/fence", str(tmp_path / "fence"))
    ok = subprocess.run(["bash", "-c", script], input="Bmc-Pw-1", capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "fence" / "password").read_text() == "Bmc-Pw-1\n"
    assert oct((tmp_path / "fence" / "password").stat().st_mode & 0o777) == "0o600"
    helper = tmp_path / "fence" / "password.sh"
    assert subprocess.run([str(helper)], capture_output=True, text=True).stdout == "Bmc-Pw-1\n"
    bad = subprocess.run(["bash", "-c", script], input="Bmc-Pw-2\nroot:x", capture_output=True, text=True)
    assert bad.returncode != 0 and (tmp_path / "fence" / "password").read_text() == "Bmc-Pw-1\n"


def test_fencing_off_has_no_fence_step() -> None:
    plan = plan_for(stonith=False)
    assert not [st.id for st in plan.steps if st.id.startswith("fence")]
    assert "--name stonith-enabled --update false" in plan.get("cluster-properties").create


def test_transition_delay_is_set_at_every_size_unless_configured() -> None:
    # pcs 0.11 refuses a time property below a second: crm_attribute sets it, and its delete removes it.
    for nodes, cluster, want in (
        (2, {}, "50ms"),
        (3, {}, "50ms"),
        (5, {}, "50ms"),
        (3, {"transition_delay": "0s"}, "0s"),
    ):
        step = plan_for(nodes=nodes, **cluster).get("cluster-properties")
        assert f"crm_attribute --type crm_config --name transition-delay --update {want}\n" in step.create
        assert step.delete is not None and "--name transition-delay --delete" in step.delete
    s = load_settings({"vip": {"address": "10.0.0.100"}, "network": {"cidr": "10.0.0.0/24"}, "nodes": {"count": 3}})
    assert "property transition-delay=50ms" in [e.what for e in cib_expectations(s)]


def test_each_node_enables_the_cluster_at_boot_itself_once_set_up(tmp_path: Path) -> None:
    seed = render_script(plan_for().get("cib-seed-lb2"), creating=True)
    for listed, enabled, want in (
        (True, False, ["systemctl enable corosync.service", "systemctl enable pacemaker.service"]),
        (True, True, []),  # no systemd reload when nothing changes
        (False, False, []),  # not set up with the cluster: a later join enables it (pcs cluster node add --enable)
    ):
        fake = fake_cluster(tmp_path / f"{listed}{enabled}", ["lb1", "lb2"] if listed else [], {})
        if not listed:
            (fake / "corosync.conf").unlink()
        fake_systemctl(fake, enabled=enabled)
        (fake / "cib.xml").touch()  # seeded already: only the enable is under test here
        done = run_in_cluster(fake, seed.replace("/var/lib/pacemaker/cib/cib.xml", str(fake / "cib.xml")))
        assert done.returncode == 0 and calls(fake) == want, done.stderr


def test_fresh_cib_is_seeded_with_dc_deadtime_only_where_pacemaker_never_ran() -> None:
    plan = plan_for(dc_deadtime="3s")
    seed = plan.get("cib-seed-lb2")
    # Only on a node set up with the cluster: a node joining later must hold no CIB for `pcs cluster node add`.
    assert (
        "if [ -f /etc/corosync/corosync.conf ] && [ ! -e /var/lib/pacemaker/cib/cib.xml ]; then" in seed.create
        and "dc-deadtime --update 3s" in seed.create
    )
    assert seed.delete is not None and "cib.xml.sig ]" in seed.delete  # a CIB Pacemaker used is left alone
    assert "--name dc-deadtime --update 3s" in plan.get("cluster-properties").create


def test_cluster_setup_uses_knet_token_and_addresses() -> None:
    create = plan_for(token_ms=1000).get("cluster-setup").create
    assert (
        "pcs cluster setup ha-lb lb1 addr=10.0.0.11 lb2 addr=10.0.0.12 transport knet link linknumber=0 "
        "ping_interval=250 ping_timeout=1000 totem token=1000 token_coefficient=0" in create
    )
    assert "--name" not in create and "pcs cluster auth" not in create


def test_replacement_keys_change_with_cluster_name_and_placement_only() -> None:
    base = plan_for()
    assert base.get("vip").replace_on == plan_for(token_ms=1000).get("vip").replace_on
    assert base.get("vip").replace_on == plan_for(nodes=3).get("vip").replace_on
    assert base.get("vip").replace_on != plan_for(name="other").get("vip").replace_on
    assert (
        base.get("haproxy-resource").replace_on != plan_for(placement="everywhere").get("haproxy-resource").replace_on
    )


def test_scripts_run_strict_and_name_step_and_node_on_error() -> None:
    step = plan_for().get("vip")
    script = render_script(step)
    assert script.startswith("set -euo pipefail\n") and "ha_lb_step=vip ha_lb_node=lb1" in script
    assert remote_command(script, "debian").startswith("sudo -n /bin/bash -c ")
    assert remote_command(script, "root").startswith("/bin/bash -c ")


def test_a_node_added_joins_the_running_cluster_instead_of_re_forming_it() -> None:
    two, three = plan_for(nodes=2), plan_for(nodes=3)
    # Every step both plans have keeps its replacement keys: nothing is replaced (deleted and created again).
    for step in two.steps:
        assert three.get(step.id).replace_on == step.replace_on, step.id
    added = three.get("member-lb3")
    assert added.node == "lb1" and added.kind is StepKind.MEMBERSHIP
    # host-auth and cluster-setup name the new node: Pulumi updates (re-runs) them; both are safe to run again.
    assert "lb3" in three.get("host-auth").create and "lb3" not in two.get("host-auth").create


@pytest.mark.parametrize("nodes", [2, 3, 5])
def test_a_node_joins_and_leaves_without_waiting_in_pulumi_for_any_other_node(nodes: int) -> None:
    """Pulumi replaces every changed VM at once, each chain (leave, old VM deleted, new VM, join) waiting for
    nothing but its own node; the leave steps wait for each other at run time. A join that depended on another
    node's steps would wait for that node's chain, itself waiting for this node to rejoin: a deadlock."""
    plan = plan_for(nodes=nodes, fencing={"agent": "fence_xvm"})
    names = [f"lb{i}" for i in range(1, nodes + 1)]
    for node in names:
        join, leave = plan.get(f"member-{node}"), plan.get(f"leave-{node}")
        assert join.node != node and leave.node == node, "joined from a member, left from itself"
        assert join.about == leave.about == (node,) and join.goes_with is None
        closure = deps_closure(plan, join.id)
        own = ("wait", "hacluster-password", "haproxy-config", "hosts", "fence-secret")
        assert closure == {f"{p}-{node}" for p in own}
        assert deps_closure(plan, leave.id) == closure | {join.id}
        assert leave.goes_with == "cluster-setup", "pulumi destroy takes the cluster down whole"
        assert join.delete is None and leave.delete is not None


CLUSTER_FAKES = {
    # crm_mon's XML from `states` (lines: name online standby [pending]).
    "crm_mon": r"""#!/bin/bash
[ -f "$FAKE/running" ] || exit 102
echo '<crm_mon><nodes>'
while read -r n o s p; do
  echo "<node name=\"$n\" online=\"$o\" standby=\"$s\" pending=\"${p:-false}\" type=\"member\"/>"
done < "$FAKE/states"
echo '</nodes></crm_mon>'
""",
    # The leaving mark in a file: create fails when it exists (noclobber), as the CIB's create of an existing id.
    "cibadmin": r"""#!/bin/bash
case "$1" in
  --query) [ -f "$FAKE/mark" ] || exit 105; echo "<nvpair name=\"ha-lb-leaving\" value=\"$(cat "$FAKE/mark")\"/>" ;;
  --create) v=$(sed -n "s/.* value='\([^']*\)'.*/\1/p" <<< "$5"); set -C; echo "$v" > "$FAKE/mark" 2>/dev/null ;;
  --delete) v=$(sed -n "s/.*@value='\([^']*\)'.*/\1/p" <<< "$3")
            [ "$(cat "$FAKE/mark" 2>/dev/null)" = "$v" ] && rm -f "$FAKE/mark"; exit 0 ;;
esac
""",
    # The stack's node list, as cluster-properties writes it into the CIB (absent until then).
    "crm_attribute": r"""#!/bin/bash
if [ "$5" = "--update" ]; then echo "property $4 $6" >> "$FAKE/calls"; exit 0; fi
[ -f "$FAKE/stack" ] || exit 105; cat "$FAKE/stack"
""",
    # A node purged from the CIB leaves crm_mon's list.
    "crm_node": r"""#!/bin/bash
echo "crm_node $*" >> "$FAKE/calls"; sed -i "/^${!#} /d" "$FAKE/states"
""",
    # pcs as the cluster sees it: add and remove change corosync.conf and the node states; FAIL names a failing call.
    "pcs": r"""#!/bin/bash
echo "$*" >> "$FAKE/calls"
if [ -n "${FAIL:-}" ] && [ "$1 $2 $3" = "$FAIL" ]; then exit 1; fi
case "$1 $2 $3" in
  "cluster node add") printf '    node {\n        name: %s\n    }\n' "$4" >> "$FAKE/corosync.conf"
                      echo "$4 true false" >> "$FAKE/states" ;;
  "cluster node remove") sleep 0.3; sed -i "/name: $4\$/d" "$FAKE/corosync.conf"; sed -i "/^$4 /d" "$FAKE/states" ;;
  "node standby $3") sed -i "s/^$3 true false/$3 true true/" "$FAKE/states" ;;
esac
""",
}


def fake_cluster(tmp_path: Path, listed: list[str], states: dict[str, str], mark: str | None = None) -> Path:
    """A cluster as the membership scripts see it: corosync.conf listing `listed`, crm_mon reporting `states`
    (node: "online standby"), the leaving mark held by `mark`; pcs records its calls."""
    fake = tmp_path / "cluster"
    fake.mkdir(parents=True)
    (fake / "corosync.conf").write_text(
        "nodelist {\n" + "".join(f"    node {{\n        name: {m}\n    }}\n" for m in listed) + "}\n"
    )
    (fake / "states").write_text("".join(f"{n} {st}\n" for n, st in states.items()))
    (fake / "running").touch()
    if mark:
        (fake / "mark").write_text(mark + "\n")
    for tool, text in CLUSTER_FAKES.items():
        (fake / tool).write_text(text)
        (fake / tool).chmod(0o755)
    return fake


def _in_cluster(fake: Path, script: str, wait_s: int) -> tuple[list[str], dict[str, str]]:
    script = (
        script.replace(COROSYNC_CONF, str(fake / "corosync.conf"))
        .replace("/usr/sbin/pcs", str(fake / "pcs"))
        .replace(f"SECONDS + {MEMBERSHIP_WAIT_S}", f"SECONDS + {wait_s}")
        .replace("sleep 2", "sleep 0.1")
    )
    env = {"PATH": f"{fake}:/usr/bin:/bin", "FAKE": str(fake), "HA_LB_CLUSTER_LOCK": str(fake / "lock")}
    if (fake / "fail").exists():
        env["FAIL"] = (fake / "fail").read_text().strip()
    return ["bash", "-c", script], env


def run_in_cluster(fake: Path, script: str, stdin: str = "", wait_s: int = 3) -> subprocess.CompletedProcess[str]:
    """A membership script against the fake cluster, its waits cut to `wait_s`."""
    argv, env = _in_cluster(fake, script, wait_s)
    return subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True)


def start_in_cluster(fake: Path, script: str, wait_s: int = 3) -> subprocess.Popen[str]:
    argv, env = _in_cluster(fake, script, wait_s)
    return subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def calls(fake: Path) -> list[str]:
    path = fake / "calls"
    return path.read_text().splitlines() if path.exists() else []


ONLINE = "true false"


def test_a_member_joins_only_a_node_the_cluster_does_not_list_then_waits_for_it(tmp_path: Path) -> None:
    step = plan_for(nodes=3).get("member-lb3")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    # Nothing here should wait: room for a loaded machine (3 s failed it once), it ends as soon as the script does.
    assert run_in_cluster(fake, render_script(step), "S3cret-pw", wait_s=30).returncode == 0
    assert calls(fake) == []
    # A node new to the cluster, or a replaced VM whose old self left: authenticated afresh, added; its leaving
    # mark (held since its old self left) is dropped once it is online.
    fake = fake_cluster(tmp_path / "new", ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE}, mark="lb3")
    assert run_in_cluster(fake, render_script(step), "S3cret-pw", wait_s=30).returncode == 0
    auth, add = calls(fake)
    assert auth == "host auth lb3 addr=10.0.0.13 -u hacluster"
    assert add.startswith("cluster node add lb3 addr=10.0.0.13 --start --wait=") and add.endswith("--enable")
    assert not (fake / "mark").exists()


def test_a_member_step_purges_removed_nodes_pacemaker_wrote_back(tmp_path: Path) -> None:
    """lb4, scaled away, is offline in the CIB again (the DC's controller remembered it): purged once the join is
    done; a listed node that is offline (lb2, rebooting) is a member and stays."""
    step = plan_for(nodes=3).get("member-lb3")
    states = {"lb1": ONLINE, "lb2": "false false", "lb3": ONLINE, "lb4": "false false"}
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], states)
    assert run_in_cluster(fake, render_script(step), "S3cret-pw").returncode == 0
    assert calls(fake) == ["crm_node --force --remove lb4"]
    assert "lb4" not in (fake / "states").read_text() and "lb2 false" in (fake / "states").read_text()


def test_a_member_step_waits_for_the_cluster_to_be_formed(tmp_path: Path) -> None:
    """On a first `up` its runner has no cluster yet (cluster-setup forms it); on a runner replaced in the same
    `up` neither: it waits either way, never reporting a join that did not happen."""
    step = plan_for(nodes=3).get("member-lb3")
    fake = fake_cluster(tmp_path, [], {})
    (fake / "corosync.conf").unlink()
    done = run_in_cluster(fake, render_script(step), "S3cret-pw", wait_s=1)
    assert done.returncode != 0 and "no running cluster on lb1 for lb3 to join" in done.stderr and calls(fake) == []


def test_a_join_waits_while_another_node_is_out(tmp_path: Path) -> None:
    step = plan_for(nodes=3).get("member-lb3")
    fake = fake_cluster(tmp_path, ["lb1"], {"lb1": ONLINE}, mark="lb2")
    done = run_in_cluster(fake, render_script(step), "S3cret-pw", wait_s=1)
    assert done.returncode != 0 and "lb3 cannot join: lb2 is out of the cluster or joining it" in done.stderr
    assert calls(fake) == [] and (fake / "mark").read_text().strip() == "lb2"


def test_a_member_step_waits_for_the_cluster_and_names_a_listed_node_that_never_comes_online(tmp_path: Path) -> None:
    step = plan_for(nodes=3).get("member-lb3")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": "false false"})
    done = run_in_cluster(fake, render_script(step), "S3cret-pw")
    assert done.returncode != 0 and calls(fake) == []
    assert "lb3 is in corosync.conf but not online" in done.stderr and "pcs cluster node remove lb3" in done.stderr
    (fake / "running").unlink()  # no cluster yet (a first up, still forming)
    done = run_in_cluster(fake, render_script(step), "S3cret-pw")
    assert done.returncode != 0 and "no running cluster on lb1 for lb3 to join" in done.stderr


def test_the_totem_change_waits_its_turn_and_holds_the_mark_while_pcs_rewrites_corosync_conf(tmp_path: Path) -> None:
    """`pcs cluster config update` rewrites corosync.conf on every node, as a leave's `pcs cluster node remove` does
    from the leaving node, where the first node's lock does not reach: both take the mark."""
    step = plan_for(nodes=3).get("cluster-totem")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE}, mark="lb2")
    (fake / "corosync-cmapctl").write_text("#!/bin/sh\nexit 1\n")  # no runtime token yet: a change
    (fake / "corosync-cmapctl").chmod(0o755)
    done = run_in_cluster(fake, render_script(step, creating=True), wait_s=1)
    assert done.returncode != 0 and calls(fake) == []
    assert "the totem timing cannot change: lb2 is out of the cluster or joining it" in done.stderr
    # Its own node's mark is its node's leave (or join), never its own: it waits for that too.
    (fake / "mark").write_text("lb1\n")
    done = run_in_cluster(fake, render_script(step, creating=True), wait_s=1)
    assert done.returncode != 0 and calls(fake) == [] and (fake / "mark").read_text().strip() == "lb1"
    (fake / "mark").unlink()
    recording = 'echo "$* [$(cat "$FAKE/mark")]" >> "$FAKE/calls"'
    (fake / "pcs").write_text((fake / "pcs").read_text().replace('echo "$*" >> "$FAKE/calls"', recording))
    done = run_in_cluster(fake, render_script(step, creating=True))
    assert done.returncode == 0, done.stderr
    assert [c.rsplit(" ", 1)[1] for c in calls(fake)] == ["[totem@lb1]"] * 2, "both calls under the mark"
    assert calls(fake)[0].startswith("cluster config update totem token=") and not (fake / "mark").exists()
    # pcs sent this node's corosync.conf, knet's ping already set in it.
    assert "knet_ping_interval: 250" in (fake / "corosync.conf").read_text()
    # A failing pcs call (a node that does not answer) leaves no mark behind.
    (fake / "calls").unlink()
    (fake / "fail").write_text("cluster config update")
    done = run_in_cluster(fake, render_script(step, creating=True))
    assert done.returncode != 0 and len(calls(fake)) == 1 and not (fake / "mark").exists()


def test_knet_ping_timeout_is_never_below_a_second_and_follows_a_long_token() -> None:
    # Corosync's own default is token / 2: 200 ms at the fast profile's 400, where links flap on a busy host.
    assert knet_ping_ms(400) == (250, 1000)
    assert knet_ping_ms(1000) == (250, 1000)
    assert knet_ping_ms(10000) == (1250, 5000)


def _cmap(fake: Path, values: dict[str, str]) -> None:
    lines = "".join(f'  {k}) echo "{k} (u32) = {v}" ;;\n' for k, v in values.items())
    (fake / "corosync-cmapctl").write_text(f'#!/bin/bash\ncase "$2" in\n{lines}  *) exit 1 ;;\nesac\n')
    (fake / "corosync-cmapctl").chmod(0o755)


def test_the_totem_step_changes_nothing_while_corosync_runs_its_timing(tmp_path: Path) -> None:
    step = plan_for(nodes=3, token_ms=400).get("cluster-totem")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    running = {
        "totem.token": "400",
        "totem.token_coefficient": "0",
        "runtime.config.totem.interface.0.knet_ping_interval": "250",
        "runtime.config.totem.interface.0.knet_ping_timeout": "1000",
    }
    _cmap(fake, running)
    before = (fake / "corosync.conf").read_text()
    assert run_in_cluster(fake, render_script(step, creating=True)).returncode == 0
    assert calls(fake) == [] and (fake / "corosync.conf").read_text() == before
    # A cluster made before knet's ping was set runs corosync's default (token / 2): changed, token untouched.
    _cmap(fake, running | {"runtime.config.totem.interface.0.knet_ping_timeout": "200"})
    done = run_in_cluster(fake, render_script(step, creating=True))
    assert done.returncode == 0, done.stderr
    assert calls(fake) == ["cluster config update totem token=400 token_coefficient=0", "cluster reload corosync"]
    conf = (fake / "corosync.conf").read_text()
    assert "knet_ping_interval: 250" in conf and "knet_ping_timeout: 1000" in conf and "name: lb3" in conf


def test_the_totem_change_waits_for_every_node_online(tmp_path: Path) -> None:
    """pcs sends corosync.conf to every node, none skipped: with one offline the change waits, naming it."""
    step = plan_for(nodes=3, token_ms=400).get("cluster-totem")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": "false false"})
    _cmap(fake, {})
    done = run_in_cluster(fake, render_script(step, creating=True), wait_s=1)
    assert done.returncode != 0 and calls(fake) == [] and "knet_ping" not in (fake / "corosync.conf").read_text()
    assert "the totem timing cannot change: lb3 is not online" in done.stderr
    # A node in standby is online: pcs reaches it.
    fake = fake_cluster(tmp_path / "standby", ["lb1", "lb2"], {"lb1": ONLINE, "lb2": "true true"})
    _cmap(fake, {})
    done = run_in_cluster(fake, render_script(step, creating=True), wait_s=1)
    assert done.returncode == 0, done.stderr
    assert calls(fake)[0] == "cluster config update totem token=400 token_coefficient=0"


def test_a_corosync_conf_pcs_cannot_parse_is_left_as_it_is(tmp_path: Path) -> None:
    step = plan_for(nodes=3, token_ms=400).get("cluster-totem")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    _cmap(fake, {})
    broken = (fake / "corosync.conf").read_text() + "totem {\n"  # no closing brace
    (fake / "corosync.conf").write_text(broken)
    done = run_in_cluster(fake, render_script(step, creating=True))
    assert done.returncode != 0 and "knet's ping could not be set in" in done.stderr
    assert calls(fake) == [] and (fake / "corosync.conf").read_text() == broken
    assert sorted(p.name for p in fake.iterdir() if p.name.startswith("corosync.conf")) == ["corosync.conf"]


def test_the_totem_delete_gives_corosync_its_defaults_back(tmp_path: Path) -> None:
    step = plan_for(nodes=3, token_ms=400).get("cluster-totem")
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    _cmap(fake, {})
    assert run_in_cluster(fake, render_script(step, creating=True)).returncode == 0
    assert "knet_ping_timeout" in (fake / "corosync.conf").read_text()
    (fake / "calls").unlink()
    assert step.delete is not None
    done = run_in_cluster(fake, render_script(step, step.delete))
    assert done.returncode == 0, done.stderr
    assert calls(fake) == ["cluster config update totem token= token_coefficient=", "cluster reload corosync"]
    conf = (fake / "corosync.conf").read_text()
    assert "knet_ping" not in conf and "interface" not in conf and "name: lb2" in conf
    # The cluster is going (its identity changed): a node pcs cannot reach leaves the timing, and the delete passes.
    (fake / "fail").write_text("cluster config update")
    done = run_in_cluster(fake, render_script(step, step.delete))
    assert done.returncode == 0 and "corosync's timing left as it was" in done.stderr


def test_a_totem_mark_is_stale_only_when_its_node_is(tmp_path: Path) -> None:
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE}, mark="totem@lb1")
    done = run_in_cluster(fake, leave(2, "lb2"), wait_s=1)
    assert done.returncode != 0 and "totem@lb1 is out of the cluster or joining it" in done.stderr
    fake = fake_cluster(tmp_path / "gone", ["lb2", "lb3"], {"lb2": ONLINE, "lb3": ONLINE}, mark="totem@lb9")
    assert run_in_cluster(fake, leave(2, "lb2")).returncode == 0


def test_a_cluster_wide_step_on_a_new_vm_waits_until_it_has_joined(tmp_path: Path) -> None:
    """The first node's VM replaced in the same `up` as a change of a cluster-wide step: the step waits for the new
    VM's join (its member step, run elsewhere) rather than failing on a blank node; offline runs never wait."""
    fake = fake_cluster(tmp_path, [], {})
    (fake / "corosync.conf").unlink()
    plan = plan_for(nodes=3)
    for step_id in ("vip", "cluster-totem", "cluster-enable"):
        step = plan.get(step_id)
        done = run_in_cluster(fake, render_script(step, creating=True), wait_s=1)
        assert done.returncode != 0 and "lb1 does not run the cluster (a new VM not joined yet?)" in done.stderr
        assert "waits for lb1 to be an online cluster member" in done.stdout
        assert "does not run the cluster" not in render_script(step) + render_script(step, step.delete or "")
    # Online in Pacemaker's view: it runs, enabling the units where they are found off (setup enabled them).
    for enabled, want in ((False, ["cluster enable --all"]), (True, [])):
        fake = fake_cluster(tmp_path / f"joined-{len(want)}", ["lb1"], {"lb1": ONLINE})
        fake_systemctl(fake, active=True, enabled=enabled)
        done = run_in_cluster(fake, render_script(plan.get("cluster-enable"), creating=True))
        assert done.returncode == 0 and calls(fake) == want, done.stderr
    # A node whose cluster was stopped by hand fails at once, not after the join's long wait.
    fake = fake_cluster(tmp_path / "stopped", ["lb1"], {"lb1": "false false"})
    (fake / "systemctl").write_text("#!/bin/sh\nexit 3\n")
    (fake / "systemctl").chmod(0o755)
    script = render_script(plan.get("vip"), creating=True).replace(f"-ge {CLUSTER_STOPPED_S}", "-ge 6")
    done = run_in_cluster(fake, script, wait_s=60)
    assert done.returncode != 0 and "the cluster is stopped on lb1 (pcs cluster start)" in done.stderr
    for step_id in ("cluster-setup", "cluster-start", "host-auth"):  # they form the cluster on a first `up`
        assert "does not run the cluster" not in render_script(plan.get(step_id), creating=True)


def fake_systemctl(fake: Path, active: bool = False, enabled: bool = False) -> None:
    """systemctl answering is-active and is-enabled as told, recording what else it is asked."""
    (fake / "systemctl").write_text(
        '#!/bin/sh\ncase "$*" in\n'
        f"  *is-active*) exit {0 if active else 3} ;;\n  *is-enabled*) exit {0 if enabled else 1} ;;\n"
        '  *) echo "systemctl $*" >> "$FAKE/calls" ;;\nesac\n'
    )
    (fake / "systemctl").chmod(0o755)


def test_cluster_start_returns_once_every_listed_node_is_online_and_not_pending(tmp_path: Path) -> None:
    script = render_script(plan_for(nodes=3).get("cluster-start"), creating=True)
    script = script.replace(f"SECONDS + {CLUSTER_START_WAIT_S}", "SECONDS + 2")
    assert "--wait" not in script, "pcs's own wait polls every 2 s"
    # Run again on a formed cluster (its text changed in an upgrade; cluster-properties wrote the stack's node list):
    # nothing is started, nothing waited for, lb2 stopped by hand stays stopped.
    fake = fake_cluster(tmp_path / "running", ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb3": ONLINE})
    fake_systemctl(fake, active=True)
    (fake / "stack").write_text("lb1 lb2 lb3\n")
    done = run_in_cluster(fake, script)
    assert done.returncode == 0 and calls(fake) == [] and "runs already" in done.stdout, done.stderr
    # A first `up` tried again after a partial start (Pacemaker runs here, no node list yet): it starts and waits.
    (fake / "stack").unlink()
    done = run_in_cluster(fake, script)
    assert done.returncode != 0 and calls(fake) == ["cluster start --all"], "lb2 never came: the deadline"
    # lb3 still pending, then lb2 not seen at all: the step waits, and fails at its deadline saying so.
    for states in ({"lb1": ONLINE, "lb2": ONLINE, "lb3": "true false true"}, {"lb1": ONLINE, "lb3": ONLINE}):
        fake = fake_cluster(tmp_path / str(len(states)), ["lb1", "lb2", "lb3"], states)
        fake_systemctl(fake)
        done = run_in_cluster(fake, script)
        assert done.returncode != 0 and "not every node started within" in done.stderr, done.stderr
    # Every node started: it returns at once, having started the cluster once.
    fake = fake_cluster(tmp_path / "all", ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    fake_systemctl(fake)
    started = time.monotonic()
    done = run_in_cluster(fake, script)
    assert done.returncode == 0 and calls(fake) == ["cluster start --all"], done.stderr
    assert time.monotonic() - started < 2


def leave(nodes: int, node: str) -> str:
    step = plan_for(nodes=nodes).get(f"leave-{node}")
    assert step.delete is not None
    return render_script(step, step.delete)


def test_a_node_leaves_by_standby_then_removal_once_every_other_node_is_online(tmp_path: Path) -> None:
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    done = run_in_cluster(fake, leave(3, "lb2"))
    assert done.returncode == 0, done.stderr
    assert calls(fake) == [f"node standby lb2 --wait={CLUSTER_START_WAIT_S}", "cluster node remove lb2"]
    assert (fake / "mark").read_text().strip() == "lb2", "held until it is back (its member step drops it)"


@pytest.mark.parametrize(
    ("states", "mark", "reason"),
    [
        ({"lb1": ONLINE, "lb3": "false false"}, None, "lb3 is not an online member"),
        ({"lb1": ONLINE}, None, "lb3 is not an online member"),  # out of the cluster (replaced, not back)
        ({"lb1": ONLINE, "lb3": "true true"}, None, "lb3 is not an online member"),  # in standby: leaving
        ({"lb1": ONLINE, "lb3": ONLINE}, "lb1", "lb1 is out of the cluster or joining it"),
    ],
)
def test_a_node_stays_while_another_is_out_or_leaving(
    tmp_path: Path, states: dict[str, str], mark: str | None, reason: str
) -> None:
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb2": ONLINE, **states}, mark=mark)
    done = run_in_cluster(fake, leave(3, "lb2"), wait_s=1)
    assert done.returncode != 0 and calls(fake) == []
    assert f"lb2 stays in the cluster: {reason}" in done.stderr and "one at a time" in done.stderr
    assert (fake / "mark").exists() == (mark is not None), "no mark of its own left behind"


def test_a_stale_leaving_mark_is_dropped_and_a_node_not_in_the_cluster_has_nothing_to_leave(tmp_path: Path) -> None:
    # lb3 left the cluster, and the stack (as this leave step knows it): nothing brings it back, its mark is stale.
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE}, mark="lb3")
    assert run_in_cluster(fake, leave(2, "lb2")).returncode == 0
    assert (fake / "mark").read_text().strip() == "lb2"
    # Still in the stack: out for its replacement, back soon. Its mark holds every other leave until then.
    fake = fake_cluster(tmp_path / "out", ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE}, mark="lb3")
    done = run_in_cluster(fake, leave(3, "lb2"), wait_s=1)
    assert done.returncode != 0 and "lb3 is out of the cluster or joining it" in done.stderr and calls(fake) == []
    fake = fake_cluster(tmp_path / "gone", ["lb1"], {"lb1": ONLINE})
    done = run_in_cluster(fake, leave(2, "lb2"))
    assert done.returncode == 0 and "lb2: not a cluster member" in done.stdout and calls(fake) == []


def test_nodes_whose_vms_are_replaced_at_once_leave_one_at_a_time(tmp_path: Path) -> None:
    """Every leave of a 3-node cluster at once, as Pulumi runs them when every VM changes: one leaves, the others
    wait for it to be back (here it never is) and give up naming it; never two out at once."""
    fake = fake_cluster(tmp_path, ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    procs = {n: start_in_cluster(fake, leave(3, n)) for n in ("lb1", "lb2", "lb3")}
    results = {n: (p.wait(timeout=30), p.communicate()) for n, p in procs.items()}
    left = [n for n, (rc, _) in results.items() if rc == 0]
    assert len(left) == 1, results
    removes = [c for c in calls(fake) if c.startswith("cluster node remove")]
    assert removes == [f"cluster node remove {left[0]}"]
    for n, (_, (_, err)) in results.items():
        if n not in left:
            assert f"{left[0]} is out of the cluster or joining it" in err, err
    assert (fake / "mark").read_text().strip() == left[0], "kept until it is back"


def run_secret_step(tmp_path: Path, step_id: str, stdin: str) -> tuple[int, str, list[str]]:
    """A step that reads a secret on stdin, with chpasswd and pcs replaced by recorders: (exit code, stderr, what
    each recorder read on its stdin)."""
    seen = tmp_path / "seen"
    seen.write_text("")
    for tool in ("chpasswd", "pcs"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\n{{ printf "{tool}:"; cat; printf "|"; }} >> {seen}\n')
        fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HA_LB_CLUSTER_LOCK": str(tmp_path / "lock")}
    done = subprocess.run(
        ["bash", "-c", render_script(plan_for().get(step_id))], input=stdin, capture_output=True, text=True, env=env
    )
    return done.returncode, done.stderr, [x for x in seen.read_text().split("|") if x]


@pytest.mark.parametrize("step_id", ["hacluster-password-lb1", "host-auth"])
def test_a_secret_step_passes_exactly_one_value(tmp_path: Path, step_id: str) -> None:
    tool = "chpasswd" if step_id.startswith("hacluster") else "pcs"
    expected = "chpasswd:hacluster:S3cret-pw\n" if tool == "chpasswd" else "pcs:S3cret-pw\n"
    for given in ("S3cret-pw", "S3cret-pw\n"):
        rc, _, seen = run_secret_step(tmp_path, step_id, given)
        assert (rc, seen) == (0, [expected])


@pytest.mark.parametrize("step_id", ["hacluster-password-lb1", "host-auth"])
@pytest.mark.parametrize(
    "given",
    ["pw\nroot:owned", "pw\n\nroot:owned\n", "", "\n", "pw\rroot", "tab\there", "nul\x01x"],
    ids=["second-line", "blank-then-line", "empty", "newline-only", "cr", "tab", "control"],
)
def test_a_secret_step_refuses_anything_but_one_clean_line(tmp_path: Path, step_id: str, given: str) -> None:
    rc, err, seen = run_secret_step(tmp_path, step_id, given)
    assert rc != 0 and seen == [], "nothing reaches chpasswd or pcs"
    assert "refused" in err and "root" not in err and "owned" not in err


def test_cluster_wide_steps_take_the_cluster_lock_and_node_steps_do_not() -> None:
    plan = plan_for(fencing={"agent": "fence_xvm"})
    for step in plan.steps:
        locked = "flock -w" in render_script(step)
        if step.kind is StepKind.MEMBERSHIP:
            # Only around the change (a join waits for the cluster first, a leave for the other nodes, the totem
            # change for its turn): holding the lock while waiting would hold up the very steps that end the wait.
            assert locked == (step.id.startswith("member-") or step.id == "cluster-totem"), step.id
            if locked:
                script = render_script(step)
                assert script.index("flock -w") > script.index("take_mark "), step.id
            # The totem's delete (`pulumi destroy`) waits for no turn: locked throughout.
            assert ("flock -w" in render_script(step, step.delete or "")) == (step.id == "cluster-totem"), step.id
            continue
        assert locked == (step.kind in (StepKind.AUTH, StepKind.CLUSTER, StepKind.CIB)), step.id
        if step.delete:
            assert ("flock -w" in render_script(step, step.delete)) == locked, step.id


READ_MODIFY_WRITE_PCS = """#!/bin/bash
# pcs as it edits a CIB: read the whole file, change it, replace it whole (slowly: the race window is wide).
old=$(cat "$CIB"); sleep 0.3; printf '%s\\n%s' "$old" "$*" > "$CIB"
"""


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "without-lock"])
def test_concurrent_cib_steps_lose_nothing_under_the_lock(tmp_path: Path, locked: bool) -> None:
    """The VIP's and HAProxy's steps share their dependencies, so Pulumi runs them at once: under the lock every edit
    lands; without it (the same bodies, no prelude) a read-modify-write pcs loses one, which the test must see too."""
    plan = plan_for(nodes=3)
    steps = [plan.get("vip"), plan.get("haproxy-resource"), plan.get("resource-defaults")]
    cib = tmp_path / "cib"
    cib.write_text("")
    fake = tmp_path / "pcs"
    fake.write_text(READ_MODIFY_WRITE_PCS)
    fake.chmod(0o755)
    cibadmin = tmp_path / "cibadmin"
    # Nothing exists yet (every query fails): each step adds its part; cibadmin's own edits are atomic.
    cibadmin.write_text('#!/bin/sh\ncase "$1" in --query) exit 105;; esac\nprintf "\\n%s" "cibadmin $*" >> "$CIB"\n')
    cibadmin.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HA_LB_CLUSTER_LOCK": str(tmp_path / "lock"), "CIB": str(cib)}
    scripts = [render_script(s) if locked else render_script(s).replace(_lock_prelude(), "") for s in steps]
    procs = [subprocess.Popen(["bash", "-c", script], env=env) for script in scripts]
    assert [p.wait(30) for p in procs] == [0, 0, 0]
    landed = [line for line in cib.read_text().splitlines() if line]
    assert (len(landed) == len(steps) + 1) == locked, landed  # + 1: the VIP's rule


def test_every_node_knows_every_name_and_a_new_node_updates_the_others_hosts_file(tmp_path: Path) -> None:
    two, three = plan_for(nodes=2).get("hosts-lb1"), plan_for(nodes=3).get("hosts-lb1")
    assert two.replace_on == three.replace_on, "updated (its create run again), not replaced"
    hosts = tmp_path / "hosts"
    for step, expected in ((three.create, ["lb1", "lb2", "lb3"]), (three.delete or "", ["lb1"])):
        subprocess.run(["bash", "-c", step.replace("/etc/hosts", str(hosts))], check=True)
        lines = hosts.read_text().splitlines()
        assert lines[0] == "127.0.0.1 localhost" and [x.split()[-1] for x in lines[2:]] == expected
        assert lines[2] == "10.0.0.11 lb1.lb.internal lb1"


@pytest.mark.parametrize("placement", ["with-vip", "everywhere"])
def test_systemd_restarts_a_dead_haproxy_in_place_over_pacemakers_restart_no(placement: str) -> None:
    """Pacemaker's drop-in (/run/.../50-pacemaker.conf) says Restart=no; drop-ins apply in file-name order whatever
    their directory, so ours must sort after it, and its undo must remove it."""
    step = plan_for(placement=placement).get("haproxy-config-lb1")
    name = RESTART_DROPIN.rsplit("/", 1)[1]
    assert sorted([name, "50-pacemaker.conf"])[-1] == name
    assert {"[Service]", "Restart=always", "RestartSec=0"} <= set(RESTART_DROPIN_LINES)
    service = RESTART_DROPIN_LINES.index("[Service]")
    assert RESTART_DROPIN_LINES.index("Restart=always") > service
    assert RESTART_DROPIN in step.create and RESTART_DROPIN in (step.delete or "")


def test_a_failed_join_gives_the_mark_back_and_a_half_done_removal_keeps_it(tmp_path: Path) -> None:
    join = plan_for(nodes=3).get("member-lb3")
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE})
    (fake / "fail").write_text("cluster node add")
    assert run_in_cluster(fake, render_script(join), "S3cret-pw").returncode != 0
    assert not (fake / "mark").exists(), "a join that failed holds no node back"
    # The removal failed after taking the node out of corosync.conf: its mark stays, so no other node leaves.
    fake = fake_cluster(tmp_path / "half", ["lb1", "lb2", "lb3"], {"lb1": ONLINE, "lb2": ONLINE, "lb3": ONLINE})
    (fake / "pcs").write_text(
        (fake / "pcs").read_text().replace("exit 1; fi", 'sed -i "/name: $4\\$/d" "$FAKE/corosync.conf"; exit 1; fi')
    )
    (fake / "fail").write_text("cluster node remove")
    assert run_in_cluster(fake, leave(3, "lb2")).returncode != 0
    assert (fake / "mark").read_text().strip() == "lb2"


def test_a_mark_is_stale_once_its_holder_left_the_stack_as_the_cib_records_it(tmp_path: Path) -> None:
    """A delete runs the script stored when its step was created: its own list still names a node taken out of the
    stack since; the list cluster-properties keeps in the CIB does not."""
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE}, mark="lb3")
    (fake / "stack").write_text("lb1 lb2\n")
    assert run_in_cluster(fake, leave(3, "lb2")).returncode == 0, "lb3 is out of the stack: its mark is stale"
    assert (fake / "mark").read_text().strip() == "lb2"


def qdevice_plan(nodes: int = 2, profile: str = "default", **qd: Any) -> Plan:
    return plan_for(nodes=nodes, profile=profile, quorumDevice={"address": "10.0.0.50", **qd})


def test_qnetd_gets_a_certificate_authority_of_its_own_readable_by_its_user(tmp_path: Path) -> None:
    qnetd = render_script(qdevice_plan().get("qnetd-qnetd"), creating=True)
    for has_db, want in ((False, ["certutil -i -G"]), (True, [])):
        fake = tmp_path / str(has_db)
        (fake / "db").mkdir(parents=True)
        if has_db:
            (fake / "db" / "cert9.db").touch()
        for tool, body in {
            "corosync-qnetd-certutil": 'echo "certutil $*" >> "$FAKE/calls"; touch "$FAKE/db/cert9.db"',
            "chgrp": 'echo "chgrp $*" >> "$FAKE/groups"',
            "systemctl": 'case "$*" in *is-*) exit 1 ;; esac; echo "systemctl $*" >> "$FAKE/calls"',
        }.items():
            (fake / tool).write_text(f"#!/bin/sh\n{body}\n")
            (fake / tool).chmod(0o755)
        script = qnetd.replace("/etc/corosync/qnetd/nssdb", str(fake / "db"))
        env = {"PATH": f"{fake}:/usr/bin:/bin", "FAKE": str(fake)}
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert calls(fake) == [*want, "systemctl enable corosync-qnetd", "systemctl start corosync-qnetd"]
        db = fake / "db"
        assert (fake / "groups").read_text().split() == [
            "chgrp",
            "coroqnetd",
            str(db),
            f"{db}/cert9.db",
            f"{db}/key4.db",
        ]


def test_a_quorum_device_sets_up_qnetd_on_its_arbiter_then_joins_the_running_cluster() -> None:
    plan = qdevice_plan()
    qnetd, device = plan.get("qnetd-qnetd"), plan.get("quorum-device")
    assert qnetd.node == "qnetd" and qnetd.owner == "node"
    assert deps_closure(plan, qnetd.id) == {"wait-qnetd", "hacluster-password-qnetd"}
    assert "pcs qdevice setup" not in qnetd.create, "it would leave the database root's; qnetd runs as coroqnetd"
    assert "pcs qdevice destroy net" in (qnetd.delete or "")
    assert device.node == "lb1" and device.kind is StepKind.MEMBERSHIP and device.on_running_cluster
    assert {"cluster-start", "qnetd-qnetd", "vip", "haproxy-enable"} <= deps_closure(plan, device.id)
    assert plan.steps[-1] is device, "the VIP serves before the device is added"
    assert "pcs property set priority-fencing-delay=0" in device.create
    delete = device.delete or ""
    assert delete.index('pcs property set "priority-fencing-delay=${pfd:-5s}"') < delete.index(
        "pcs quorum device remove"
    ), "two_node again: the delay back first"
    assert device.stdin is Stdin.HACLUSTER_PASSWORD and device.about == ("qnetd",)
    assert "pcs quorum device remove" in (device.delete or "")
    # Nodes install corosync-qdevice; no cluster step runs on the arbiter but its own.
    assert {s.node for s in plan.steps if s.node == "qnetd"} == {"qnetd"}
    assert [s.id for s in plan.steps if s.node == "qnetd"] == ["wait-qnetd", "hacluster-password-qnetd", "qnetd-qnetd"]
    # Without one, none of this.
    assert not [s for s in plan_for().steps if "qnetd" in s.id or s.id == "quorum-device"]


def test_a_new_quorum_device_setting_replaces_the_device_and_a_join_authenticates_the_arbiter() -> None:
    base = qdevice_plan().get("quorum-device")
    for other in (qdevice_plan(algorithm="lms"), qdevice_plan(address="10.0.0.51")):
        assert other.get("quorum-device").replace_on != base.replace_on
    join = qdevice_plan(nodes=3).get("member-lb3")
    assert "hacluster-password-qnetd" in join.depends_on
    assert "pcs host auth lb3 addr=10.0.0.13 10.0.0.50 addr=10.0.0.50 -u hacluster" in join.create


def test_the_quorum_device_step_adds_the_device_under_the_mark_and_is_done_when_it_is_there(tmp_path: Path) -> None:
    step = qdevice_plan().get("quorum-device")
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": "false false"})
    cmap = fake / "corosync-cmapctl"
    cmap.write_text(
        '#!/bin/sh\n[ -f "$FAKE/qdevice" ] || exit 1\ngrep "^$2 " "$FAKE/qdevice" | sed "s/^[^ ]* /x = /"\n'
    )
    cmap.chmod(0o755)
    # A node offline: pcs could not reach it to give it a certificate; it waits, and names it.
    done = run_in_cluster(fake, render_script(step, creating=True), "S3cret-pw", wait_s=1)
    assert done.returncode != 0 and calls(fake) == []
    assert "the quorum device cannot be added or changed: lb2 is not online" in done.stderr
    (fake / "states").write_text("lb1 true false\nlb2 true false\n")
    recording = 'echo "$* [$(cat "$FAKE/mark")]" >> "$FAKE/calls"'
    (fake / "pcs").write_text((fake / "pcs").read_text().replace('echo "$*" >> "$FAKE/calls"', recording))
    done = run_in_cluster(fake, render_script(step, creating=True), "S3cret-pw")
    assert done.returncode == 0, done.stderr
    auth, add, no_delay = calls(fake)
    assert auth == "host auth 10.0.0.50 addr=10.0.0.50 -u hacluster [qdevice@lb1]"
    assert add.startswith(
        "quorum device add timeout=2000 model net host=10.0.0.50 algorithm=ffsplit heuristics mode=sync exec_vip="
    ), "qnetd drops a silent node 2.4 x token after its last beat: about when corosync does"
    assert add.endswith("[qdevice@lb1]") and not (fake / "mark").exists()
    assert no_delay == "property set priority-fencing-delay=0 [qdevice@lb1]"
    # Once corosync runs with it, nothing to do; a device set by hand is replaced.
    (fake / "calls").unlink()
    device = (
        "quorum.device.net.host 10.0.0.50\nquorum.device.net.algorithm ffsplit\nquorum.device.heuristics.mode sync\n"
        "quorum.device.timeout {}\n"
    )
    (fake / "qdevice").write_text(device.format(2000))
    assert run_in_cluster(fake, render_script(step, creating=True), "S3cret-pw").returncode == 0
    assert [c.split(" [")[0] for c in calls(fake)] == ["property set priority-fencing-delay=0"]
    (fake / "calls").unlink()
    # Another token (the profile changed): the device's timeout follows it, in place, under the mark (pcs rewrites
    # corosync.conf everywhere and restarts corosync-qdevice on every node).
    (fake / "qdevice").write_text(device.format(10000))
    assert run_in_cluster(fake, render_script(step, creating=True), "S3cret-pw").returncode == 0
    assert calls(fake) == [
        "quorum device update timeout=2000 [qdevice@lb1]",
        "property set priority-fencing-delay=0 [qdevice@lb1]",
    ]
    (fake / "calls").unlink()
    (fake / "qdevice").write_text("quorum.device.net.host 10.9.9.9\nquorum.device.net.algorithm lms\n")
    assert run_in_cluster(fake, render_script(step, creating=True), "S3cret-pw").returncode == 0
    assert [c.split(" [")[0] for c in calls(fake)][1:2] == ["quorum device remove"]


def test_the_heuristic_passes_only_where_the_vip_is(tmp_path: Path) -> None:
    """The very command corosync-qdevice runs, split as its lexer does (double quotes), against `ip` output with
    and without the VIP."""
    from components.plan import qdevice_heuristic

    command = qdevice_heuristic("10.0.0.100")
    argv = shlex.split(command)
    assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3
    fake_ip = tmp_path / "ip"
    for holds, rc in ((True, 0), (False, 1)):
        line = "2: eth0    inet 10.0.0.100/24 scope global secondary eth0" if holds else ""
        fake_ip.write_text(f"#!/bin/sh\n[ \"$*\" = '-4 -o address show to 10.0.0.100/32' ] && echo '{line}' | grep .\n")
        fake_ip.chmod(0o755)
        done = subprocess.run(argv, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
        assert done.returncode == rc


@pytest.mark.parametrize(("profile", "timeout"), [("default", 2000), ("fast", 1250)])
def test_the_device_timeout_follows_the_token_and_lms_runs_no_heuristic(profile: str, timeout: int) -> None:
    ffsplit = qdevice_plan(profile=profile).get("quorum-device").create
    assert f"quorum device add timeout={timeout} model net" in ffsplit and "exec_vip=" in ffsplit
    lms = qdevice_plan(profile=profile, nodes=3, algorithm="lms").get("quorum-device").create
    (add,) = [line for line in lms.splitlines() if "pcs quorum device add" in line]
    assert "algorithm=lms" in add and "heuristics" not in add, "lms ranks heuristics before size"
    assert '[ "$have_mode" = "" ]' in lms, "a device with a heuristic is replaced by one without"


QUORUMTOOL = """Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1    {0} lb1
         2          1    {1} lb2 (local)
         0          {2}            Qdevice
"""


def test_with_a_quorum_device_a_node_leaves_only_while_the_device_votes(tmp_path: Path) -> None:
    """The node left behind counts on the arbiter's vote (1 node + 1 device of 2): with the arbiter down, leaving
    would stop the cluster; the leave waits and says why."""
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE})
    with (fake / "corosync.conf").open("a") as f:
        f.write("quorum {\n    device {\n        model: net\n    }\n}\n")
    tool = fake / "corosync-quorumtool"
    cases = [("NA,NV,NMW", 0, False), ("A,NV,NMW", 0, False), ("NR", 0, False), ("A,V,NMW", 1, True)]
    for flags, votes, ok in cases:
        # Only the other node's flags count: this node's own corosync-qdevice may be why it is replaced.
        tool.write_text(f"#!/bin/sh\ncat <<'X'\n{QUORUMTOOL.format(flags, 'NR', votes)}X\n")
        tool.chmod(0o755)
        done = run_in_cluster(fake, leave(2, "lb2"), wait_s=1)
        assert (done.returncode == 0) == ok, (flags, done.stderr)
        if not ok:
            assert "the quorum device does not vote (is the arbiter up?)" in done.stderr and calls(fake) == []
    assert calls(fake)[0].startswith("node standby lb2")


def test_with_a_quorum_device_in_corosync_conf_the_properties_drop_the_fence_delay(tmp_path: Path) -> None:
    """Only the half given the arbiter's vote has quorum and may fence: no race to delay. Before the device is added
    (or once it is removed) the cluster is two_node again, and the configured delay holds."""
    step = qdevice_plan().get("cluster-properties")
    fake = fake_cluster(tmp_path, ["lb1", "lb2"], {"lb1": ONLINE, "lb2": ONLINE})
    (fake / "stack").write_text("lb1 lb2\n")
    for device, delay in (False, "5s"), (True, "0"):
        if device:
            with (fake / "corosync.conf").open("a") as f:
                f.write("quorum {\n    device {\n        model: net\n    }\n}\n")
        (fake / "calls").unlink(missing_ok=True)
        done = run_in_cluster(fake, render_script(step))
        assert done.returncode == 0, done.stderr
        props = dict(c.split(" ", 2)[1:] for c in calls(fake) if c.startswith("property "))
        assert props["priority-fencing-delay"] == delay and props["stonith-enabled"] == "true", props
    assert "--name priority-fencing-delay --update 5s" in plan_for().get("cluster-properties").create
    # The device's delete puts back the delay as configured now, kept in the CIB by cluster-properties.
    assert "crm_attribute --type crm_config --name ha-lb-priority-fencing-delay --update 5s" in step.create
    assert "--name ha-lb-priority-fencing-delay --query" in (qdevice_plan().get("quorum-device").delete or "")


def test_the_vip_is_placed_off_the_dc_by_a_rule_below_the_stickiness() -> None:
    vip = plan_for().get("vip").create
    # Created held, the rule added, then started: its first placement already obeys the rule.
    held, rule, release = vip.index("ha-lb-held=true"), vip.index("#is_dc"), vip.index("cibadmin --delete-all")
    assert held < rule < release
    assert 'score="1"' in vip and 'value="false"' in vip  # a point off the DC would ban it as a lone survivor
    assert "location-vip-off-dc" in (plan_for().get("vip").delete or "")


def test_no_dc_rule_where_the_stickiness_would_not_outweigh_it() -> None:
    vip = plan_for(stickiness=1).get("vip").create
    assert "#is_dc" not in vip and "ha-lb-held=true" not in vip
    assert "pcs constraint delete location-vip-off-dc" in vip  # one made when the stickiness was higher goes


@pytest.mark.parametrize(("query_exit", "started"), [(105, False), (102, None)])
def test_creating_a_cib_that_cannot_be_read_fails_instead_of_passing_for_absent(
    tmp_path: Path, query_exit: int, started: bool | None
) -> None:
    """haproxy-enable lifts a stop only where the CIB shows one: a CIB it cannot read (102: not connected) must fail
    the step, not pass it with HAProxy left stopped; 105 is cibadmin's "no match", a real absence."""
    step = plan_for().get("haproxy-enable")
    body = render_script(step, creating=True).replace(_joined_prelude(), "").replace(_lock_prelude(), "")
    log = tmp_path / "log"
    for tool, script in (("cibadmin", f"exit {query_exit}"), ("pcs", f'echo "pcs $*" >> {log}')):
        (tmp_path / tool).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / tool).chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", body], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True
    )
    if started is None:
        assert done.returncode != 0 and "cannot read the CIB (cibadmin exit 102)" in done.stderr
    else:
        assert done.returncode == 0 and not log.exists(), done.stderr


def test_waiting_for_the_node_online_survives_crm_mon_dying_of_sigpipe(tmp_path: Path) -> None:
    """crm_mon writes its XML in several writes once the CIB holds a few resources: piped into `grep -q`, it died of
    SIGPIPE after grep's match, and under pipefail the prelude took the match for a miss and slept 2 s (bring-up
    steps at random took 2 s more). A crm_mon whose node line comes first, then more output later, must pass at once."""
    crm_mon = tmp_path / "crm_mon"
    crm_mon.write_text(
        "#!/bin/bash\n"
        'echo \'<node name="lb1" id="1" online="true"/>\'\n'
        "sleep 0.3\n"
        "head -c 200000 /dev/zero | tr '\\0' x\n"
    )
    crm_mon.chmod(0o755)
    script = "set -euo pipefail\nha_lb_step=s ha_lb_node=lb1\n" + _joined_prelude() + "echo online\n"
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout.strip() == "online", done.stdout + done.stderr


@pytest.mark.parametrize("in_a_cluster", [True, False])
def test_an_undo_that_cannot_read_the_cib_fails_unless_the_node_has_no_cluster(
    tmp_path: Path, in_a_cluster: bool
) -> None:
    """A node's fence device is removed on the first node while the cluster runs: a CIB it cannot read there (102,
    Pacemaker restarting) must fail the delete, not pass it with the device left; with no corosync.conf at all there
    is no cluster and nothing to undo."""
    step = plan_for(nodes=3).get("fence-lb3")
    conf = tmp_path / "corosync.conf"
    if in_a_cluster:
        conf.write_text("totem {}\n")
    body = render_script(step, step.delete).replace(_lock_prelude(), "").replace(COROSYNC_CONF, str(conf))
    log = tmp_path / "log"
    for tool, script in (("cibadmin", "exit 102"), ("pcs", f'echo "pcs $*" >> {log}')):
        (tmp_path / tool).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / tool).chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", body], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True
    )
    if in_a_cluster:
        assert done.returncode != 0 and "cannot read the CIB (cibadmin exit 102)" in done.stderr
    else:
        assert done.returncode == 0 and not log.exists(), done.stderr
