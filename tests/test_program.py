"""The program under Pulumi's mock engine: the resource graph, step dependencies, connections and secrets."""

from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.plan import build_plan
from components.registrations import parallel_warning
from components.settings import load_settings
from tests.harness import (
    MOCK_PRIVATE_KEY,
    MOCK_PUBLIC_KEY,
    ProgramMocks,
    ProgramRun,
    is_secret,
    run_program,
    stack_config,
    unwrap,
)

COMMAND = "command:remote:Command"
BASE: dict[str, Any] = {
    "ha-lb:vip": {"address": "10.0.0.100"},
    "ha-lb:network": {"cidr": "10.0.0.0/24"},
    "ha-lb:cluster": {"placement": "with-vip"},
}


def run(nodes: int = 2, **extra: Any) -> ProgramRun:
    result = run_program({**BASE, "ha-lb:nodes": {"count": nodes}, **extra})
    assert result.error is None, result.error
    return result


def commands(r: ProgramRun) -> dict[str, Any]:
    return {c.name.removeprefix("cluster-").removeprefix("floating-ip-"): c for c in r.of_type(COMMAND)}


@pytest.mark.parametrize("nodes", [2, 3, 5])
def test_graph_has_a_vm_per_node_and_the_plan_as_commands(nodes: int) -> None:
    r = run(nodes)
    types = Counter(x.type for x in r.registrations)
    assert types["ha-lb:libvirt:ClusterNode"] == nodes
    assert types["libvirt:index/domain:Domain"] == nodes
    assert types["libvirt:index/cloudInitDisk:CloudInitDisk"] == nodes
    assert types["libvirt:index/volume:Volume"] == nodes + 1  # one base image for the single host
    assert types["pulumi:providers:libvirt"] == 1
    # Per node: wait, password, config, hosts, CIB seed, member, leave, fence secret, fence device and its check; 12
    # one-time steps.
    assert types[COMMAND] == 10 * nodes + 12
    assert types["ha-lb:cluster:FloatingIp"] == 1
    names = [x.urn for x in r.registrations]
    assert len(names) == len(set(names))


def test_children_are_parented_to_their_component() -> None:
    r = run()
    parent_type = {x.name: r.by_urn[x.parent].type if x.parent in r.by_urn else "stack" for x in r.registrations}
    assert parent_type["lb1-domain"] == parent_type["lb1-disk"] == "ha-lb:libvirt:ClusterNode"
    assert parent_type["cluster-host-auth"] == "ha-lb:cluster:HaCluster"
    assert parent_type["cluster-floating-ip-vip"] == "ha-lb:cluster:FloatingIp"
    assert parent_type["cluster-floating-ip"] == "ha-lb:cluster:HaCluster"
    assert parent_type["secrets-ssh-key"] == "ha-lb:secrets:ClusterSecrets"
    for x in r.registrations:
        if not x.type.startswith("ha-lb:"):
            assert parent_type[x.name] != "stack", x.name


def test_engine_sees_each_step_after_what_it_needs() -> None:
    r = run(3)
    c = commands(r)
    deps = {name: r.dependency_names(reg) for name, reg in c.items()}
    assert "lb2-domain" in deps["wait-lb2"]
    assert {"cluster-hacluster-password-lb1", "cluster-hacluster-password-lb3"} <= deps["host-auth"]
    assert "cluster-host-auth" in deps["cluster-setup"]
    assert {"cluster-cib-seed-lb1", "cluster-cib-seed-lb3"} <= deps["cluster-start"]
    assert "cluster-cluster-setup" in deps["cib-seed-lb2"]
    assert {"cluster-cluster-properties", "cluster-resource-defaults"} <= deps["vip"]
    assert {"cluster-floating-ip-vip", "cluster-haproxy-resource"} <= deps["colocation-haproxy-with-vip"]
    assert {"cluster-colocation-haproxy-with-vip", "cluster-order-vip-then-haproxy"} <= deps["haproxy-enable"]


def test_registration_order_follows_dependencies() -> None:
    order = [x.name for x in run().of_type(COMMAND)]
    assert (
        order.index("cluster-cluster-setup")
        < order.index("cluster-floating-ip-vip")
        < order.index("cluster-haproxy-enable")
    )


def step_nodes(nodes: int) -> dict[str, str]:
    """The node each step of the plan runs on, by step id."""
    raw = {k.removeprefix("ha-lb:"): v for k, v in BASE.items()}
    s = load_settings({**raw, "nodes": {"count": nodes}})
    return {st.id: st.node for st in build_plan(s).steps}


def test_connections_aim_at_each_steps_node() -> None:
    r = run(3)
    on = step_nodes(3)
    assert on["fence-check-lb1"] == "lb2" and on["fence-check-lb3"] == "lb1", "a device is checked from another node"
    for name, reg in commands(r).items():
        conn = unwrap(reg.inputs["connection"])
        node = on[name]
        assert conn["host"] == f"10.0.0.{10 + int(node[2:])}", name
        assert conn["user"] == "debian" and conn["port"] == 22
        assert conn["dialErrorLimit"] >= 60


def test_every_connection_pins_its_nodes_host_key_which_only_that_nodes_user_data_carries() -> None:
    r = run(3)
    keys = {
        x.name.removeprefix("host-keys-"): x
        for x in r.of_type("tls:index/privateKey:PrivateKey")
        if x.name.startswith("host-keys-")
    }
    assert set(keys) == {"lb1", "lb2", "lb3"} and all(k.inputs["algorithm"] == "ED25519" for k in keys.values())
    for name, reg in commands(r).items():
        conn = unwrap(reg.inputs["connection"])
        assert conn["hostKey"] == MOCK_PUBLIC_KEY.strip(), name
    for node in ("lb1", "lb2", "lb3"):
        user_data = r.named(f"{node}-cloudinit").inputs["userData"]
        assert is_secret(user_data), "it carries the host private key"
        ssh_keys = yaml.safe_load(unwrap(user_data))["ssh_keys"]
        assert ssh_keys == {"ed25519_private": MOCK_PRIVATE_KEY, "ed25519_public": MOCK_PUBLIC_KEY.strip()}


def test_a_replaced_vm_makes_its_member_step_run_afresh_and_no_other_nodes() -> None:
    c = commands(run(3))
    triggers = {name: set(unwrap(c[name].inputs["triggers"])) for name in ("member-lb2", "member-lb3", "host-auth")}
    assert "lb2-domain-id" in triggers["member-lb2"] and "lb3-domain-id" not in triggers["member-lb2"]
    assert "lb3-domain-id" in triggers["member-lb3"]
    assert not {t for t in triggers["host-auth"] if t.endswith("-domain-id")}


def node_owned(name: str) -> bool:
    raw = {k.removeprefix("ha-lb:"): v for k, v in BASE.items()}
    return build_plan(load_settings(raw)).get(name).owner == "node"


def test_steps_are_replaced_delete_first_and_die_with_their_vm() -> None:
    r = run()
    for name, reg in commands(r).items():
        assert reg.delete_before_replace, name
        goes_with = r.by_urn[reg.deleted_with].name if reg.deleted_with else None
        if name.startswith("member-"):
            assert goes_with is None, "it has no delete, and waits for no other node's VM"
        elif name.startswith("leave-"):
            assert goes_with == "cluster-cluster-setup", "destroy takes the cluster down whole"
        elif node_owned(name):
            assert goes_with == f"{step_nodes(2)[name]}-domain", name
        else:
            # Never with the first node's VM: a new one would re-create every cluster-wide step (Pulumi 3.260+).
            assert goes_with == "cluster-lifetime", name
    assert "lb2-domain-id" in unwrap(commands(r)["wait-lb2"].inputs["triggers"])


@pytest.mark.parametrize("nodes", [2, 3])
def test_a_node_rejoins_without_its_registration_waiting_for_any_other_nodes_vm(nodes: int) -> None:
    """What a registration waits for (its dependencies, and the resource it is deleted with): a node's join must
    not wait for another node's VM, whose replacement waits in its leave step for this node to be back."""
    r = run(nodes)
    by_name = {reg.name: reg for reg in r.registrations}

    def waits_for(name: str) -> set[str]:
        out: set[str] = set()
        todo = [by_name[name]]
        while todo:
            reg = todo.pop()
            for urn in [*reg.dependencies, *([reg.deleted_with] if reg.deleted_with else [])]:
                dep = r.by_urn.get(urn)
                if dep is not None and dep.name not in out:
                    out.add(dep.name)
                    todo.append(dep)
        return out

    for i in range(1, nodes + 1):
        domains = {d for d in waits_for(f"cluster-member-lb{i}") if d.endswith("-domain")}
        assert domains == {f"lb{i}-domain"}, domains


def test_secrets_are_secret_in_outputs_and_inputs_and_never_in_command_text() -> None:
    r = run()
    secrets = {k: unwrap(r.outputs[k]) for k in ("haclusterPassword", "statsPassword", "sshPrivateKey")}
    for key in secrets:
        assert is_secret(r.outputs[key]), key
    assert not is_secret(r.outputs["vip"])
    c = commands(r)
    assert unwrap(c["host-auth"].inputs["stdin"]) == secrets["haclusterPassword"]
    assert secrets["statsPassword"] in unwrap(c["haproxy-config-lb1"].inputs["stdin"])
    for name, reg in c.items():
        assert is_secret(reg.inputs["connection"])
        if "stdin" in reg.inputs:
            assert is_secret(reg.inputs["stdin"]) and set(reg.additional_secret_outputs) >= {"stdout", "stderr"}, name
    # No secret value anywhere in plain (non-secret) inputs of any resource.
    for reg in r.registrations:
        for key, value in reg.inputs.items():
            if not is_secret(value):
                text = str(unwrap(value))
                for secret in secrets.values():
                    assert secret not in text, (reg.name, key)


def test_secrets_set_in_config_are_used_instead_of_generated() -> None:
    r = run_program(
        {
            **BASE,
            "ha-lb:haclusterPassword": "given-Hacluster-1",
            "ha-lb:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nZ2l2ZW4ta2V5\n-----END OPENSSH PRIVATE KEY-----\n",
        },
        secret_keys=["ha-lb:haclusterPassword", "ha-lb:sshPrivateKey"],
    )
    assert r.error is None, r.error
    random = [x.name for x in r.of_type("random:index/randomPassword:RandomPassword")]
    assert random == ["secrets-stats-password"]
    # Only the nodes' host keys are generated: the admin key was given.
    generated = {x.name for x in r.of_type("tls:index/privateKey:PrivateKey")}
    assert generated == {"host-keys-lb1", "host-keys-lb2", "fencing-ssh-key"}
    assert unwrap(r.outputs["haclusterPassword"]) == "given-Hacluster-1" and is_secret(r.outputs["haclusterPassword"])
    seed = unwrap(r.named("lb1-cloudinit").inputs["userData"])
    assert "Derived" in seed  # public half derived from the given private key


def test_secret_stored_in_plain_text_is_refused_before_any_resource() -> None:
    r = run_program({**BASE, "ha-lb:haclusterPassword": "plain"})
    assert r.error is not None and "ha-lb:haclusterPassword: stored in plain text" in str(r.error)
    assert r.registrations == []


def test_bad_config_fails_at_preview_before_any_resource() -> None:
    r = run_program(
        {"ha-lb:vip": {"address": "10.0.0.1"}, "ha-lb:network": {"cidr": "10.0.0.0/24"}, "ha-lb:nodez": 3}, preview=True
    )
    assert r.error is not None
    assert "ha-lb:vip.address" in str(r.error) and "ha-lb:nodez: unknown key" in str(r.error)
    assert r.registrations == []


def test_preview_with_unknown_ids_declares_every_step() -> None:
    r = run_program({**BASE}, preview=True, mocks=ProgramMocks(unknown_ids=True))
    assert r.error is None, r.error
    assert len(r.of_type(COMMAND)) == 10 * 2 + 12  # two nodes: every step, as in the graph test above


def test_everywhere_placement_and_fence_xvm_evaluate() -> None:
    r = run(3, **{"ha-lb:cluster": {"placement": "everywhere", "fencing": {"agent": "fence_xvm"}}})
    c = commands(r)
    assert {"fence-lb1", "fence-check-lb1", "colocation-vip-with-haproxy-clone", "order-haproxy-clone-then-vip"} <= set(
        c
    )
    assert unwrap(r.outputs["placement"]) == "everywhere"
    # The xvm key is generated, reaches every node on stdin, and is a secret output for the hypervisors' fence_virtd.
    (key,) = [x for x in r.of_type("random:index/randomPassword:RandomPassword") if x.name == "fencing-xvm-key"]
    assert key.inputs["length"] == 512 and is_secret(r.outputs["fenceXvmKey"])
    assert unwrap(c["fence-secret-lb3"].inputs["stdin"]) == unwrap(r.outputs["fenceXvmKey"])
    assert "fenceSshPublicKey" not in r.outputs


def test_fence_virsh_by_default_with_a_generated_key_whose_public_half_is_an_output() -> None:
    r = run(2)
    c = commands(r)
    (key,) = [x for x in r.of_type("tls:index/privateKey:PrivateKey") if x.name == "fencing-ssh-key"]
    assert key.inputs["algorithm"] == "ED25519"
    assert unwrap(r.outputs["fenceSshPublicKey"]) == MOCK_PUBLIC_KEY and not is_secret(r.outputs["fenceSshPublicKey"])
    for node in ("lb1", "lb2"):
        stdin = c[f"fence-secret-{node}"].inputs["stdin"]
        assert is_secret(stdin) and unwrap(stdin) == MOCK_PRIVATE_KEY
    # Fencing needs no secret on a command line: the device names the key file.
    create = unwrap(c["fence-lb1"].inputs["create"])
    assert "identity_file=/etc/ha-lb/fence/id_ssh" in create and "ip=10.0.0.1" in create and "BEGIN" not in create


def test_fencing_off_declares_no_fence_step_or_secret() -> None:
    r = run(2, **{"ha-lb:cluster": {"placement": "with-vip", "stonith": False}})
    assert not [name for name in commands(r) if name.startswith("fence")]
    assert not [x for x in r.registrations if x.name.startswith("fencing")]


def test_fence_ipmilan_takes_the_bmc_password_from_config_into_a_file_only() -> None:
    addresses = {"lb1": "10.0.0.201", "lb2": "10.0.0.202"}
    r = run_program(
        {
            **BASE,
            "ha-lb:cluster": {"fencing": {"agent": "fence_ipmilan", "ipmi": {"addresses": addresses}}},
            "ha-lb:fencePassword": "Bmc-Pw-1",
        },
        secret_keys=["ha-lb:fencePassword"],
    )
    assert r.error is None, r.error
    c = commands(r)
    assert unwrap(c["fence-secret-lb2"].inputs["stdin"]) == "Bmc-Pw-1" and is_secret(
        c["fence-secret-lb2"].inputs["stdin"]
    )
    create = unwrap(c["fence-lb2"].inputs["create"])
    assert "ip=10.0.0.202" in create and "password_script=/etc/ha-lb/fence/password.sh" in create
    for reg in r.registrations:
        for value in reg.inputs.values():
            if not is_secret(value):
                assert "Bmc-Pw-1" not in str(unwrap(value)), reg.name


def test_example_stack_evaluates(example_stack: Path) -> None:
    config, secret_keys = stack_config(example_stack), []
    if "fence_ipmilan" in str(config.get("ha-lb:cluster")):
        # Set with `pulumi config set --secret` on a real stack (the lab provides its own BMCs' password).
        config["ha-lb:fencePassword"], secret_keys = "Example-Bmc-1", ["ha-lb:fencePassword"]
    r = run_program(config, secret_keys=secret_keys, stack=example_stack.stem.removeprefix("Pulumi."))
    assert r.error is None, r.error
    assert unwrap(r.outputs["vip"]) and unwrap(r.outputs["statsUrl"]).startswith("http://")


def test_a_new_base_image_is_a_new_volume_beside_the_old_one() -> None:
    """Created before the old one is deleted (no delete-before-replace, a name of its own): each node's disk is then
    replaced in its own turn, instead of every disk deleted at once to free the old volume's name."""
    images = ("https://example.org/a.qcow2", "https://example.org/b.qcow2")
    names = []
    for image in images:
        r = run_program({**BASE, "ha-lb:nodes": {"count": 2}, "ha-lb:libvirt": {"baseImage": image}})
        (base,) = [v for v in r.of_type("libvirt:index/volume:Volume") if v.name.endswith("-base")]
        assert not base.delete_before_replace
        names.append(base.inputs["name"])
    assert names[0] != names[1] and all(n.startswith("ha-lb-base-") and n.endswith(".qcow2") for n in names)


def test_a_changed_cloud_init_seed_replaces_the_vm_rather_than_swapping_the_iso_under_it() -> None:
    """cloud-init reads its seed once per instance: a new address or key reaches a node only in a new VM."""
    r = run(3)
    for domain in r.of_type("libvirt:index/domain:Domain"):
        assert domain.replace_on_changes == ["cloudinit"] and domain.delete_before_replace, domain.name


def test_too_few_parallel_steps_for_every_node_to_be_replaced_is_warned() -> None:
    settings = pulumi.runtime.settings.SETTINGS
    try:
        for parallel, nodes, warned in ((8, 6, False), (8, 7, True), (4, 2, False), (1, 2, True)):
            settings.parallel = parallel
            warning = parallel_warning(nodes)
            assert (warning is not None) == warned, (parallel, nodes)
            assert warning is None or f"--parallel {2 * nodes + 8}" in warning
    finally:
        settings.parallel = None


def test_a_quorum_device_is_an_arbiter_vm_with_its_own_steps_packages_and_host_key() -> None:
    qd = {"address": "10.0.0.50", "name": "arbiter", "hostUri": "qemu+ssh://root@kvm3/system"}
    r = run(2, **{"ha-lb:cluster": {"placement": "with-vip", "quorumDevice": qd}})
    types = Counter(x.type for x in r.registrations)
    assert types["libvirt:index/domain:Domain"] == 3 and types["pulumi:providers:libvirt"] == 2
    domain = r.named("arbiter-domain").inputs
    assert domain["name"] == "ha-lb-arbiter" and domain["memory"] == 512 and domain["vcpu"] == 1
    user_data = yaml.safe_load(unwrap(r.named("arbiter-cloudinit").inputs["userData"]))
    assert "corosync-qnetd" in user_data["packages"] and "pacemaker" not in user_data["packages"]
    node_data = yaml.safe_load(unwrap(r.named("lb1-cloudinit").inputs["userData"]))
    assert "corosync-qdevice" in node_data["packages"]
    c = commands(r)
    for name in ("wait-arbiter", "hacluster-password-arbiter", "qnetd-arbiter"):
        assert unwrap(c[name].inputs["connection"])["host"] == "10.0.0.50", name
    assert unwrap(c["quorum-device"].inputs["connection"])["host"] == "10.0.0.11"
    assert is_secret(c["quorum-device"].inputs["stdin"])
    assert unwrap(r.outputs["quorumDevice"]) == "10.0.0.50"
    # No arbiter, no quorumDevice output and two VMs.
    assert "quorumDevice" not in run(2).outputs
