"""The lab engine's bookkeeping: the order deletes run in."""

from pathlib import Path

from lab.engine import Lab


def test_a_failed_run_keeps_deletes_in_dependency_order(tmp_path: Path) -> None:
    lab = Lab(tmp_path, tmp_path / "rootfs", log=lambda _: None)
    # A first run applied a -> b -> c -> d (each depends on the one before); a second run realized a and b again
    # (new order), then failed at c; d was never reached.
    lab.state.resources = {k: {"order": float(i)} for i, k in enumerate(["t::a", "t::b", "t::c", "t::d"])}
    lab.state.resources["t::a"]["order"] = 10.0
    lab.state.resources["t::b"]["order"] = 11.0
    lab.after_failure({"t::a", "t::b"})
    newest_first = sorted(lab.state.resources, key=lambda k: -lab.state.resources[k]["order"])
    assert newest_first == ["t::d", "t::c", "t::b", "t::a"]
    assert Lab(tmp_path, tmp_path / "rootfs").state.resources == lab.state.resources, "saved"
