"""Outage arithmetic of the VIP prober: timed by completion, the longest gap spanning the event."""

from lab.probe import Sample, outage_around, parse_samples


def samples(spec: list[tuple[float, float, bool]]) -> list[Sample]:
    return [Sample(s, e, ok) for s, e, ok in spec]


def test_outage_is_the_gap_between_completions_around_the_event() -> None:
    probes = samples(
        [
            (0.00, 0.01, True),
            (0.05, 0.06, True),  # last answer before the kill at 0.1
            (0.10, 0.60, False),
            (0.15, 0.65, False),
            # Sent while the VIP was away, answered once it came back: counts when it completes.
            (2.00, 2.31, True),
            (2.35, 2.36, True),
        ]
    )
    outage = outage_around(probes, 0.1)
    assert outage is not None
    assert (outage.last_ok_before, outage.first_ok_after) == (0.06, 2.31)
    assert round(outage.seconds, 2) == 2.25


def test_no_outage_figure_until_service_is_back() -> None:
    assert outage_around(samples([(0, 0.01, True), (0.2, 0.7, False)]), 0.1) is None


def test_parse_samples_reads_status_200_as_answered() -> None:
    parsed = parse_samples(["1.0 1.1 200", "1.2 1.7 0", "garbage", "1.3 1.4 401"])
    assert [s.ok for s in parsed] == [True, False, False]
