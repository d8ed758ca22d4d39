"""Opening hours, as staff write them for the contact page, read as the starts of opening periods
(for the supervisor's wakes before the practice opens)."""

import pytest

from services.facility.core.opening import opening_starts

MON, TUE, WED, THU, FRI, SAT, SUN = (d * 24 * 60 for d in range(7))


def at(day: int, hour: int, minute: int = 0) -> int:
    return day + hour * 60 + minute


@pytest.mark.parametrize(
    "hours, starts",
    [
        ("Mo–Fr 8–12 Uhr", [at(d, 8) for d in (MON, TUE, WED, THU, FRI)]),
        (
            "Mo, Di, Do: 8-12 und 15-18; Mi, Fr: 8:30-13",
            sorted(
                [at(d, 8) for d in (MON, TUE, THU)]
                + [at(d, 15) for d in (MON, TUE, THU)]
                + [at(WED, 8, 30), at(FRI, 8, 30)]
            ),
        ),
        ("Montag bis Freitag 7.45 - 12:00 Uhr", [at(d, 7, 45) for d in (MON, TUE, WED, THU, FRI)]),
        (
            "Mon-Fri 8am-5pm, Sat 9am-12pm",
            [at(d, 8) for d in (MON, TUE, WED, THU, FRI)] + [at(SAT, 9)],
        ),
        ("täglich 9-17", [at(d, 9) for d in (MON, TUE, WED, THU, FRI, SAT, SUN)]),
        ("8-12", [at(d, 8) for d in (MON, TUE, WED, THU, FRI)]),  # no days named: weekdays
        ("Sa geschlossen", []),
        ("Bitte rufen Sie an: 030 1234567", []),
        ("", []),
    ],
)
def test_opening_hours_as_staff_write_them(hours, starts):
    assert opening_starts(hours) == starts


def test_nonsense_times_give_nothing():
    assert opening_starts("Mo 25-26, Di 12-8, Mi 13pm-14pm") == []


def test_the_supervisor_learns_only_the_starts_over_the_socket(client, admin_auth):
    hours = {"hours": "Di 14–18 Uhr (nur mit Termin)"}
    assert client.put("/api/v1/contact", json=hours, headers=admin_auth).status_code == 200
    assert client.get("/_medcell/status").json["opens"] == [at(TUE, 14)]
