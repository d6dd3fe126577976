"""The lab dials a node as pulumi-command does: quickly at first, then every 5 s, up to the connection's limit."""

from lab.ssh import retry_delay


def test_first_redials_come_quickly_then_every_five_seconds() -> None:
    assert retry_delay(0) == 0.1
    assert sum(retry_delay(i) for i in range(5)) < 1.5
    assert retry_delay(30) == 5.0


def test_the_programs_dial_limit_waits_minutes_for_a_slow_node() -> None:
    # The program's connections allow 120 dials: a node booting on a loaded machine must get that long.
    assert 8 * 60 < sum(retry_delay(i) for i in range(119)) < 10 * 60
