"""The lab dials a node as pulumi-command does: quickly at first, then every 5 s, up to the connection's limit."""

from pathlib import Path

from lab.ssh import Connection, Ssh, retry_delay


def test_first_redials_come_quickly_then_every_five_seconds() -> None:
    assert retry_delay(0) == 0.1
    assert sum(retry_delay(i) for i in range(5)) < 1.5
    assert retry_delay(30) == 5.0


def test_the_programs_dial_limit_waits_minutes_for_a_slow_node() -> None:
    # The program's connections allow 120 dials: a node booting on a loaded machine must get that long.
    assert 8 * 60 < sum(retry_delay(i) for i in range(119)) < 10 * 60


def test_a_pinned_host_key_is_the_only_one_accepted(tmp_path: Path) -> None:
    ssh = Ssh(tmp_path, "ns")
    pinned = Connection("10.0.0.11", "debian", 2222, "key", host_key="ssh-ed25519 AAAAHOST\n")
    argv = ssh.argv(pinned, "true")
    assert "StrictHostKeyChecking=yes" in argv and "HostKeyAlgorithms=ssh-ed25519" in argv
    known = Path(next(a for a in argv if a.startswith("UserKnownHostsFile=")).split("=", 1)[1])
    assert known.read_text() == "[10.0.0.11]:2222 ssh-ed25519 AAAAHOST\n"
    unpinned = ssh.argv(Connection("10.0.0.11", "debian", 22, "key"), "true")
    assert "StrictHostKeyChecking=no" in unpinned
