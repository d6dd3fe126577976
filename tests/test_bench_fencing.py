"""The fencing benchmark's arithmetic, no lab: the phases read from a survivor's journal, the outage split at the
thaw or restore, the slack over the VIP's start (the issue's bound) and the notes of a table row."""

from datetime import datetime

from bench.fencing import Run, longest_gap, notes, slack
from bench.journal import phases
from lab.probe import Sample

YEAR = datetime.now().year
HUNG_AT = datetime(YEAR, 3, 5, 20, 41, 0).timestamp()

# What lab2's journal (short-precise) says after lab1, the VIP's node, hung at 20:41:00.
JOURNAL = """\
Mar 05 20:40:59.200000 lab2 pacemaker-controld[420]:  notice: Result of start operation for haproxy on lab2: ok
Mar 05 20:41:01.500000 lab2 corosync[301]:   [KNET  ] link: host: 1 link: 0 is down
Mar 05 20:41:02.130000 lab2 pacemaker-controld[420]:  notice: Node lab1 state is now lost
Mar 05 20:41:02.240000 lab2 pacemaker-fenced[416]:  notice: Requesting fencing (reboot) of node lab1
Mar 05 20:41:12.610000 lab2 pacemaker-fenced[416]:  notice: Operation 'reboot' targeting lab1 by lab2 for pacemaker-controld.420@lab2: OK
Mar 05 20:41:12.690000 lab2 pacemaker-controld[420]:  notice: Result of start operation for vip on lab2: ok
Mar 05 20:41:12.950000 lab2 systemd[1]: Started haproxy.service - HAProxy Load Balancer.
Mar 05 20:41:15.000000 lab2 pacemaker-controld[420]:  notice: Result of start operation for haproxy on lab2: ok
Mar 05 20:41:20.000000 lab2 pacemaker-controld[420]:  notice: Node lab1 state is now lost
 continuation line without a stamp: Node lab1 state is now lost
Mar 05 20:41:21.000000 lab2 pacemaker-controld[420]:  notice: Result of start operation for vip on lab2: ok
""".splitlines()


def test_phases_are_the_first_mark_of_each_step_in_seconds_after_the_hang() -> None:
    # The journal is read from a second before the hang: a start before it (the last settle's) is not a mark.
    assert phases(JOURNAL, "lab1", HUNG_AT) == {
        "membership lost": 2.13,
        "fence requested": 2.24,
        "fence done": 12.61,
        "VIP started": 12.69,
        "haproxy ready": 12.95,
        "haproxy started": 15.0,
    }


def test_phases_of_another_node_keep_only_the_starts() -> None:
    assert phases(JOURNAL, "lab3", HUNG_AT) == {"VIP started": 12.69, "haproxy ready": 12.95, "haproxy started": 15.0}


def test_slack_is_what_the_outage_has_beyond_the_vips_start() -> None:
    marks = phases(JOURNAL, "lab1", HUNG_AT)
    assert slack(13.05, marks) == 0.36
    assert slack(13.4, marks) == 0.71
    assert slack(3.0, {"membership lost": 2.1}) is None


def probes(spec: list[tuple[float, bool]]) -> list[Sample]:
    """Probes sent every 50 ms, each answered (or failed) 10 ms later."""
    return [Sample(end - 0.01, end, ok) for end, ok in spec]


def test_the_outage_ends_at_the_restore_and_the_gap_after_is_measured_apart() -> None:
    # Cut at 1.0, restored at 5.0: a 1 s gap during the cut, then 2.5 s lost when the cluster sorts itself out.
    steady = [(t / 2, True) for t in range(4, 12)]  # answered every 0.5 s from 2.0 to 5.5
    samples = probes([(0.5, True), (1.0, True), (1.5, False), *steady, (6.0, False), (8.0, True)])
    assert longest_gap(samples, 1.0, 5.0) == 1.0
    assert longest_gap(samples, 5.0) == 2.5
    # A gap that begins before the restore belongs to the outage, even if it ends after.
    assert longest_gap(probes([(0.5, True), (4.0, True), (9.0, True)]), 1.0, 5.0) == 5.0


def test_no_gap_figure_without_an_answer_on_both_sides() -> None:
    assert longest_gap(probes([(0.5, True), (2.0, False)]), 1.0) is None
    assert longest_gap(probes([(2.0, True)]), 1.0) is None


def test_notes_count_who_was_fenced_and_the_runs_within_the_bound() -> None:
    runs = [
        Run(13.0, 0.1, 0.0, ["VIP's node"], {"fence done": 12.5, "VIP started": 12.6}, 0.4),
        Run(14.0, 0.1, 0.0, ["VIP's node"], {"fence done": 12.7, "VIP started": 12.8}, 1.2),
        Run(13.5, 0.1, 0.0, [], {"VIP started": 13.1}, 0.4),
    ]
    text = notes(runs)
    assert "fenced: VIP's node 2/3, nobody 1/3" in text
    assert "fence done 12.60, VIP started 12.80" in text
    assert "<= 0.5 s in 2/3" in text
    assert notes([Run(3.4, 2.0, 20.4)]) == "-"
