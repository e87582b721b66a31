"""Demo officials for `make run`: SYNTHETIC people for Hanoi's real units, marked as such.

Every name is invented from common Vietnamese family, middle and given names by a seeded generator and
ends with "(mô phỏng)"; ids start with `DEMO-CB-`. Each unit gets a head, a deputy and (departments) two
officers; in a few units the head changed during the last quarter, so the quarterly report shows a head
who left before its end (who is not held accountable) and the one who took over (who is). About half of
the assignments name one of their unit's deputies or officers as the lead official. A generator of its
own: the rest of the demo data is unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Sequence

from civicscore import ingest, officials
from civicscore.domain.periods import Quarter

SEED = 13  # Decree 13/2023/NĐ-CP on personal data protection
MARK = " (mô phỏng)"
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Phan",
          "Trịnh", "Đinh", "Lương", "Tạ")
MIDDLE = ("Văn", "Thị", "Minh", "Quang", "Thu", "Hữu", "Đức", "Ngọc", "Thanh", "Xuân", "Hồng", "Anh", "Mạnh",
          "Phương")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng", "Huyền", "Khánh",
         "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Ngọc", "Phong", "Phúc", "Quân", "Quỳnh", "Sơn", "Tâm",
         "Thảo", "Thắng", "Trang", "Trung", "Tuấn", "Vân", "Việt", "Yến")


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}{MARK}"


def _appointment(unit: str, position: str, start: dt.date, end: dt.date | None = None
                 ) -> officials.AppointmentInput:
    return officials.AppointmentInput(unit=f"units/{unit}", position=position, start_on=start.isoformat(),
                                      end_on=end.isoformat() if end else "")


def generate(units: Sequence[ingest.UnitInput], quarters: Sequence[Quarter]) -> list[officials.OfficialInput]:
    """The demo officials of `units`, holding their positions through `quarters` (the last may see a change
    of head in about one unit in twelve)."""
    rng = random.Random(SEED)
    first, last = quarters[0], quarters[-1]
    since = first.start - dt.timedelta(days=400)
    people: list[officials.OfficialInput] = []
    for unit in units:
        if rng.random() < 1 / 12:
            handover = last.start + dt.timedelta(days=rng.randint(20, 75))
            held = [(_appointment(unit.code, "head", since, handover - dt.timedelta(days=1)),),
                    (_appointment(unit.code, "deputy", since, handover - dt.timedelta(days=1)),
                     _appointment(unit.code, "head", handover))]
        else:
            held = [(_appointment(unit.code, "head", since),), (_appointment(unit.code, "deputy", since),)]
        held += [(_appointment(unit.code, "officer", since),)] * (2 if unit.kind == "department" else 0)
        people.extend(officials.OfficialInput(official_id=f"DEMO-CB-{unit.code}-{number}", display_name=_name(rng),
                                              appointments=appointments, under_review_periods=())
                      for number, appointments in enumerate(held, start=1))
    return people


def with_leads(assignments: Sequence[ingest.AssignmentInput], people: Sequence[officials.OfficialInput]
               ) -> list[ingest.AssignmentInput]:
    """About half of the assignments led by a deputy or an officer of their unit (a seeded choice)."""
    rng = random.Random(SEED + 1)
    leads: dict[str, list[str]] = {}
    for official in people:
        for appointment in official.appointments:
            if appointment.position != "head":
                leads.setdefault(appointment.unit, []).append(official.official_id)
    led: list[ingest.AssignmentInput] = []
    for assignment in assignments:
        choices = leads.get(assignment.unit, [])
        if choices and rng.random() < 0.5:
            assignment = dataclasses.replace(assignment, lead_official=f"officials/{rng.choice(choices)}")
        led.append(assignment)
    return led
