"""An offline cluster: a CIB file with the stack's nodes, the plan's CIB steps applied to it with `pcs -f`, and
Pacemaker's scheduler run on it with `crm_simulate`."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.plan import Expectation, Step, render_script
from procs.runner import Completed, Runner

HERE = Path(__file__).resolve().parent
CIB_SHIM = HERE / "shim"
CLUSTER_SHIM = HERE / "shim-cluster"

Placement = dict[str, set[str]]
"""Resource id (primitive; clone instances merged) -> nodes where it is active."""


@dataclass(frozen=True)
class StepRun:
    step: Step
    result: Completed


class OfflineCib:
    """CIB files in a work directory, changed only by the plan's own scripts and Pacemaker's tools."""

    def __init__(self, workdir: Path, runner: Runner, pcs_socket: str | None) -> None:
        self.workdir = workdir
        self.run = runner
        self.pcs_socket = pcs_socket

    def path(self, name: str) -> Path:
        return self.workdir / name

    def create_empty(self, name: str, nodes: Sequence[str]) -> Path:
        """An empty CIB whose nodes are all online (`crm_simulate -u`), as a fresh cluster has."""
        empty = self.path("empty.xml")
        made = self.run(["cibadmin", "--empty"])
        empty.write_text(made.stdout)
        argv = ["crm_simulate", "-x", str(empty), "-S", "-q", "1", "-O", str(self.path(name))]
        for node in nodes:
            argv += ["-u", node]
        done = self.run(argv)
        if not done.ok:
            raise RuntimeError(f"crm_simulate could not make the empty CIB: {done.tail()}")
        return self.path(name)

    def copy(self, source: str, target: str) -> Path:
        shutil.copyfile(self.path(source), self.path(target))
        return self.path(target)

    def env(self, cib: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{CIB_SHIM}:{env.get('PATH', '/usr/bin:/bin')}"
        env["CIB_file"] = str(cib)  # pcs (through the shim) and cibadmin both work on this file
        env["HA_LB_CLUSTER_LOCK"] = str(self.workdir / "cluster.lock")  # not the host's: checks run side by side
        env["HA_LB_SYSTEMD_FORCE"] = "0" if Path("/run/systemd/system").is_dir() else "1"
        env.pop("HA_LB_PCS_SOCKET", None)
        if self.pcs_socket:
            env["HA_LB_PCS_SOCKET"] = self.pcs_socket
        return env

    def apply(self, cib: Path, steps: Iterable[Step], delete: bool = False) -> list[StepRun]:
        """Run each step's create (or delete) script, as the node would, against `cib`. Stops at the first failure."""
        runs = []
        for step in steps:
            body = step.delete if delete else step.create
            if body is None:
                continue
            result = self.run(["bash", "-c", render_script(step, body)], env=self.env(cib))
            runs.append(StepRun(step, result))
            if not result.ok:
                break
        return runs

    def drift(self, cib: Path, expected: Iterable[Expectation]) -> list[str]:
        """What `cib` lacks (or holds, where it must not) of what the plan declares."""
        env = {**os.environ, "CIB_file": str(cib)}
        return [
            f"{e.what}: {'missing' if e.present else 'present'}"
            for e in expected
            if self.run(["cibadmin", "--query", "--xpath", e.xpath], env=env).ok != e.present
        ]

    def set_dc(self, cib: Path, node: str) -> None:
        """Make `node` the DC of `cib` (its `dc-uuid`), as the elected controller would be: what `#is_dc` reads."""
        tree = ET.parse(cib)
        ids = [n.get("id") for n in tree.getroot().iter("node") if n.get("uname") == node]
        if len(ids) != 1 or ids[0] is None:
            raise RuntimeError(f"{cib} has no single node {node}")
        tree.getroot().set("dc-uuid", ids[0])
        tree.write(cib)

    def forget_history(self, cib: Path, node: str) -> Completed:
        """A hard-killed node comes back rebooted: nothing runs there, so its old resource history goes.

        (`crm_simulate -f` keeps it, and a node returning with it would look like it still runs the VIP.)
        """
        xpath = f"//node_state[@uname='{node}']/lrm"
        return self.run(
            ["cibadmin", "--delete-all", "--xpath", xpath, "--force"], env={**os.environ, "CIB_file": str(cib)}
        )

    def simulate(
        self,
        source: Path,
        target: Path,
        *,
        fail: Sequence[str] = (),
        up: Sequence[str] = (),
        inject: Sequence[str] = (),
        graph: Path | None = None,
    ) -> tuple[Placement, Completed]:
        """One scheduler transition from `source` (nodes failing or joining, op failures injected) into `target`;
        `graph` receives the transition graph (each action with the actions it waits for)."""
        argv = ["crm_simulate", "-x", str(source), "-S", "--output-as=xml", "-O", str(target)]
        if graph is not None:
            argv += ["-G", str(graph)]
        for node in fail:
            argv += ["-f", node]
        for node in up:
            argv += ["-u", node]
        for op in inject:
            argv += ["-i", op]
        done = self.run(argv)
        if not done.ok:
            return {}, done
        return parse_placement(done.stdout), done


def parse_placement(xml_text: str) -> Placement:
    """Where each resource runs after the transition (`revised_cluster_status`)."""
    root = ET.fromstring(xml_text)
    revised = root.find("revised_cluster_status/resources")
    placement: Placement = {}
    if revised is None:
        return placement
    for res in revised.iter("resource"):
        rid = res.get("id", "")
        nodes = placement.setdefault(rid, set())
        if res.get("active") == "true" and res.get("role") in ("Started", "Promoted", "Unpromoted"):
            nodes.update(n.get("name", "") for n in res.findall("node"))
    return placement


def waits_for_fencing(graph_xml: str, resource: str, node: str) -> bool:
    """Whether the graph starts `resource` somewhere only once `node` is fenced (directly or through other actions)."""
    root = ET.fromstring(graph_xml)
    waits: dict[str, set[str]] = {}
    labels: dict[str, tuple[str, str, str]] = {}
    for synapse in root.iter("synapse"):
        for action in synapse.find("action_set") or []:
            aid = action.get("id", "")
            labels[aid] = (action.get("operation", ""), action.get("operation_key", ""), action.get("on_node", ""))
            waits[aid] = {t.get("id", "") for trig in synapse.iter("trigger") for t in trig}
        for trig in synapse.iter("trigger"):
            for t in trig:
                labels.setdefault(
                    t.get("id", ""), (t.get("operation", ""), t.get("operation_key", ""), t.get("on_node", ""))
                )
    fence = {a for a, (op, _, on) in labels.items() if op == "stonith" and on == node}
    starts = [a for a, (op, key, _) in labels.items() if op == "start" and key.split("_start_")[0] == resource]

    def before(action: str, seen: set[str]) -> set[str]:
        for dep in waits.get(action, set()) - seen:
            seen.add(dep)
            before(dep, seen)
        return seen

    return bool(starts) and all(fence & before(a, set()) for a in starts)


def started_in_transition(xml_text: str, resource: str, node: str) -> bool:
    """Whether the transition starts `resource` on `node` (a restart is a stop and a start)."""
    transition = ET.fromstring(xml_text).find("transition")
    return transition is not None and any(
        a.get("op") == "start" and a.get("node") == node and a.get("resource", "").split(":")[0] == resource
        for a in transition.iter("rsc_action")
    )


def normalized_configuration(cib: Path) -> str:
    """The `configuration` section, canonical, without attribute sets left empty (Pacemaker treats them as absent)."""
    root = ET.parse(cib).getroot()
    config = root.find("configuration")
    if config is None:
        return ""
    changed = True
    while changed:
        changed = False
        for parent in list(config.iter()):
            for child in list(parent):
                if (
                    child.tag in ("cluster_property_set", "meta_attributes", "rsc_defaults", "op_defaults")
                    and len(child) == 0
                ):
                    parent.remove(child)
                    changed = True
    return ET.canonicalize(ET.tostring(config, encoding="unicode"), strip_text=True)


def primitives(cib: Path) -> list[tuple[str, str]]:
    """(id, agent) of every primitive, agent as class:provider:type or class:type."""
    root = ET.parse(cib).getroot()
    out = []
    for prim in root.iter("primitive"):
        cls, provider, kind = prim.get("class", ""), prim.get("provider"), prim.get("type", "")
        out.append((prim.get("id", ""), f"{cls}:{provider}:{kind}" if provider else f"{cls}:{kind}"))
    return out
