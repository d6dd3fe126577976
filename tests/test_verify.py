"""The offline proof, with the real Debian tools, over a matrix of stacks, and its negative cases."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.plan import Plan, build_plan
from components.settings import Settings, load_settings
from procs.runner import run
from verify.checks import render_first_node, verify_stack
from verify.offline import OfflineCib, normalized_configuration
from verify.report import Report
from verify.stackfile import settings_from_stack_file
from verify.zygote import PcsZygote


@pytest.fixture(scope="module")
def pcs_socket() -> Iterator[str]:
    with PcsZygote() as zygote:
        yield zygote.socket


def settings(nodes: int = 2, placement: str = "with-vip", stonith: bool = False, **extra: Any) -> Settings:
    cluster: dict[str, Any] = {"placement": placement, "stonith": stonith, **extra.pop("cluster", {})}
    return load_settings(
        {
            "vip": {"address": "10.0.0.100"},
            "network": {"cidr": "10.0.0.0/24"},
            "nodes": {"count": nodes},
            "cluster": cluster,
            **extra,
        }
    )


def assert_ok(report: Report) -> None:
    assert report.ok, report.text()


MATRIX = [(n, p, st) for n in (2, 3, 5) for p in ("with-vip", "everywhere") for st in (False, True)]


@pytest.mark.parametrize(
    "nodes,placement,stonith", MATRIX, ids=[f"{n}n-{p}-{'stonith' if st else 'nostonith'}" for n, p, st in MATRIX]
)
def test_matrix(pcs_socket: str, nodes: int, placement: str, stonith: bool) -> None:
    s = settings(nodes, placement, stonith)
    report = verify_stack(s, f"{nodes} {placement} {stonith}", pcs_socket=pcs_socket)
    assert_ok(report)
    names = {n.name for n in s.node_list}
    pl = report.facts["placements"]
    (home,) = pl["all-up"]["vip"]
    expected_haproxy = names if placement == "everywhere" else {home}
    assert pl["all-up"]["haproxy"] == expected_haproxy
    (survivor,) = pl["vip-node-fails"]["vip"]
    assert survivor != home and survivor in pl["vip-node-fails"]["haproxy"]
    assert pl["failed-node-returns"]["vip"] == {survivor}
    assert home not in pl[f"haproxy-monitor-fails-{s.cluster.migration_threshold}"]["vip"]
    assert pl["haproxy-monitor-fails-1"]["vip"] == {home}
    if nodes >= 3:
        assert not pl["second-node-fails"]["vip"] & {home, survivor}
    for i in range(1, nodes + 1 if stonith else 1):
        assert f"lb{i}" not in pl["all-up"][f"fence-lb{i}"]
    corosync = report.facts["corosync"]
    assert corosync["transport"] == "KNET" and corosync["totem_options"]["token"] == str(s.token_ms)
    assert [n["name"] for n in corosync["nodes"]] == sorted(names, key=lambda x: int(x[2:]))


def test_custom_backends_ports_and_tuning(pcs_socket: str) -> None:
    s = settings(
        3,
        haproxy={
            "frontends": [
                {"name": "web", "port": 80, "mode": "http", "backend": "web"},
                {"name": "pg", "port": 5432, "backend": "pg"},
            ],
            "backends": [
                {
                    "name": "web",
                    "mode": "http",
                    "balance": "leastconn",
                    "checkPath": "/healthz",
                    "servers": [
                        {"name": "w1", "address": "web1.internal:8080"},
                        {"name": "w2", "address": "10.0.5.2:8080"},
                    ],
                },
                {"name": "pg", "servers": [{"name": "p1", "address": "db1:5432", "check": False}]},
            ],
            "stats": {"port": 9000, "user": "ops"},
        },
        cluster={"tokenMs": 1000, "migrationThreshold": 2, "haproxyMonitor": {"interval": "2s", "timeout": "10s"}},
    )
    report = verify_stack(s, "custom", pcs_socket=pcs_socket)
    assert_ok(report)
    assert report.facts["corosync"]["totem_options"]["token"] == "1000"
    assert (
        "haproxy-monitor-fails-2" in report.facts["placements"]
        and "haproxy-monitor-fails-3" not in report.facts["placements"]
    )


def test_example_stack_is_proven(pcs_socket: str, example_stack: Path) -> None:
    assert_ok(verify_stack(settings_from_stack_file(example_stack), example_stack.name, pcs_socket=pcs_socket))


def with_step(plan: Plan, step_id: str, create: str) -> Plan:
    return Plan(tuple(dataclasses.replace(s, create=create) if s.id == step_id else s for s in plan.steps))


def failed(report: Report) -> list[str]:
    return [c.line() for c in report.failures()]


def test_order_on_promote_of_a_plain_primitive_is_caught_by_the_scheduler(pcs_socket: str) -> None:
    s = settings()
    bad = with_step(
        build_plan(s),
        "order-vip-then-haproxy",
        "pcs constraint order promote vip then start haproxy id=order-vip-then-haproxy\n",
    )
    report = verify_stack(s, "promote", plan=bad, pcs_socket=pcs_socket)
    lines = failed(report)
    # pcs and crm_verify accept it; only the simulation shows HAProxy left stopped.
    assert not any(" cib " in f"{line} " and "plan applied with pcs -f" in line for line in lines), lines
    assert not any("crm_verify" in line for line in lines), lines
    assert any(line.startswith("FAIL  scheduler") and "HAProxy" in line for line in lines), report.text()


def test_misspelt_agent_parameter_fails_with_step_and_pcs_message(pcs_socket: str) -> None:
    s = settings()
    plan = build_plan(s)
    bad = with_step(plan, "vip", plan.get("vip").create.replace("cidr_netmask=", "cidr_netmaks="))
    lines = failed(verify_stack(s, "typo", plan=bad, pcs_socket=pcs_socket))
    assert any(
        "plan applied with pcs -f: step vip" in line and "invalid resource option 'cidr_netmaks'" in line
        for line in lines
    ), lines


def test_broken_haproxy_cfg_is_caught(pcs_socket: str) -> None:
    s = settings()
    files = render_first_node(s)
    bad = dataclasses.replace(files, haproxy_cfg=files.haproxy_cfg.replace("balance roundrobin", "balance roundrobbin"))
    lines = failed(verify_stack(s, "haproxy", files=bad, pcs_socket=pcs_socket))
    assert any(line.startswith("FAIL  haproxy") and "roundrobbin" in line for line in lines), lines


@pytest.mark.parametrize(
    "edit,check",
    [
        (lambda text: text + "packagez: [vim]\n", "top-level keys known to cloud-init: unknown: packagez"),
        (lambda text: text.replace("ssh_pwauth: false", "ssh_pwauth: [1, 2]"), "cloud-init schema: user-data"),
    ],
    ids=["unknown-top-level-key", "bad-value-in-module"],
)
def test_bad_cloud_init_is_caught(pcs_socket: str, edit: Any, check: str) -> None:
    s = settings()
    files = render_first_node(s)
    lines = failed(
        verify_stack(
            s, "cloud-init", files=dataclasses.replace(files, user_data=edit(files.user_data)), pcs_socket=pcs_socket
        )
    )
    assert any(check in line for line in lines), lines


def test_zygote_and_plain_pcs_build_the_same_cib(pcs_socket: str, tmp_path: Path) -> None:
    s = settings(3, "everywhere", True)
    steps = build_plan(s).of_kind(*{st.kind for st in build_plan(s).steps if st.kind.value == "cib"})
    results = []
    for name, socket in (("fast", pcs_socket), ("plain", None)):
        (tmp_path / name).mkdir()
        cib = OfflineCib(tmp_path / name, run, socket)
        cib.create_empty("base.xml", [n.name for n in s.node_list])
        applied = cib.copy("base.xml", "applied.xml")
        assert all(r.result.ok for r in cib.apply(applied, steps))
        results.append(normalized_configuration(applied))
    assert results[0] == results[1]


@pytest.mark.parametrize("nodes,algorithm", [(2, "ffsplit"), (4, "lms")])
def test_a_quorum_device_is_added_by_pcs_and_accepted_by_corosync(pcs_socket: str, nodes: int, algorithm: str) -> None:
    s = settings(nodes, cluster={"quorumDevice": {"address": "10.0.0.50", "algorithm": algorithm}})
    report = verify_stack(s, f"{nodes} qdevice", pcs_socket=pcs_socket)
    assert_ok(report)
    checks = [c.line() for c in report.checks if c.area == "corosync"]
    assert any("pcs quorum device add takes the arbiter" in c for c in checks), checks
    assert any("corosync -t accepts it with the quorum device" in c for c in checks), checks


def test_a_quorum_device_pcs_refuses_fails_the_proof(pcs_socket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check runs pcs for real: an option pcs does not know fails it, with pcs's words."""
    from components import pcs

    real = pcs.quorum_device_add
    monkeypatch.setattr(pcs, "quorum_device_add", lambda *a, **k: [*real(*a, **k), "sync_timeout=-5"])
    s = settings(2, cluster={"quorumDevice": {"address": "10.0.0.50"}})
    report = verify_stack(s, "bad qdevice", pcs_socket=pcs_socket)
    assert any("pcs quorum device add takes the arbiter" in f for f in failed(report)), report.text()
