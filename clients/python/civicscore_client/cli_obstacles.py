"""`civicscore obstacles report|assign|resolve|list|show`: a unit reports what blocks an assignment (khó khăn,
vướng mắc), the committee office names who resolves it and closes it with a resolution."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import obstacles_pb2
from civicscore_client.cli_locale import Lang, LangOption, hanoi_time
from civicscore_client.cli_session import Session, message_dict, messages_json, session_of

obstacles_app = typer.Typer(
    help="Obstacles (khó khăn, vướng mắc): a unit reports what blocks an assignment; the committee office names "
         "who resolves it and closes it. One still open more than 30 days at a quarter's end is escalated.",
    no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(
    help="The obstacle, e.g. assignments/QD818-17/obstacles/3 or QD818-17/3.", show_default=False)]

# Labels of this command group: (Vietnamese, English).
_WORDS: dict[str, tuple[str, str]] = {
    "obstacle": ("Vướng mắc", "Obstacle"),
    "obstacles": ("Khó khăn, vướng mắc", "Obstacles"),
    "status": ("Trạng thái", "Status"),
    "assignment": ("Nhiệm vụ", "Assignment"),
    "unit": ("Đơn vị", "Unit"),
    "description": ("Khó khăn, vướng mắc", "What blocks it"),
    "request": ("Đề xuất, kiến nghị", "What the unit asks for"),
    "requested_of": ("Đề nghị đến", "Asked of"),
    "reported_by": ("Người báo cáo", "Reported by"),
    "days_open": ("Số ngày", "Days open"),
    "resolver": ("Đơn vị, người xử lý", "Resolver"),
    "assigned_by": ("Người giao xử lý", "Assigned by"),
    "resolution": ("Kết quả giải quyết", "Resolution"),
    "resolved_by": ("Người đóng", "Resolved by"),
    "none": ("Không có vướng mắc nào khớp điều kiện lọc.", "No obstacles match."),
    "hint": ("Giao xử lý: civicscore obstacles assign TÊN --unit SNV | --official \"Họ tên, chức vụ\"; "
             "đóng: civicscore obstacles resolve TÊN --resolution KẾT_QUẢ",
             "Assign with: civicscore obstacles assign NAME --unit SNV | --official \"Name, position\"; "
             "close with: civicscore obstacles resolve NAME --resolution TEXT"),
}
_STATUSES: dict[str, tuple[str, str]] = {
    "open": ("Chưa giao xử lý", "Open"),
    "assigned": ("Đã giao xử lý", "Assigned"),
    "resolved": ("Đã giải quyết", "Resolved"),
}


def _w(key: str, lang: Lang) -> str:
    vi, en = _WORDS[key]
    return en if lang is Lang.en else vi


def status_name(value: int) -> str:
    """`open` for OBSTACLE_STATUS_OPEN."""
    return obstacles_pb2.ObstacleStatus.Name(value).removeprefix("OBSTACLE_STATUS_").lower()  # type: ignore[arg-type]


def status_label(value: int, lang: Lang) -> str:
    vi, en = _STATUSES.get(status_name(value), (status_name(value), status_name(value)))
    return en if lang is Lang.en else vi


def _resolver(o: obstacles_pb2.Obstacle) -> str:
    return o.resolver_unit or o.resolver_official


def _line(o: obstacles_pb2.Obstacle, lang: Lang) -> Text:
    text = Text()
    text.append(o.name, style="bold")
    text.append(f"  {status_label(o.status, lang)} · {o.days_open} {_w('days_open', lang).lower()}\n")
    text.append(f"  {_w('assignment', lang)}: {o.assignment} ({o.unit}) {o.assignment_title}")
    if _resolver(o):
        text.append(f"\n  {_w('resolver', lang)}: {_resolver(o)}")
    if o.resolution:
        text.append(f"\n  {_w('resolution', lang)}: {o.resolution}")
    return text


def _print_one(session: Session, o: obstacles_pb2.Obstacle, lang: Lang) -> None:
    if session.json_output:
        session.print_json(message_dict(o))
        return
    session.out.print(_line(o, lang))


@obstacles_app.command()
def report(
    ctx: typer.Context,
    assignment: Annotated[str, typer.Argument(help="The assignment, e.g. QD818-17 or assignments/QD818-17.",
                                              show_default=False)],
    description: Annotated[str, typer.Option("--description", "-d", help="What blocks it (required).",
                                             show_default=False)],
    request: Annotated[str, typer.Option("--request", "-r", help="What the unit asks for (required).",
                                         show_default=False)],
    requested_of: Annotated[str, typer.Option("--requested-of", help="From whom (a body or an official).")] = "",
    lang: LangOption = Lang.vi,
) -> None:
    """Report an obstacle on an assignment of your unit that is still in progress."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.report_obstacle(assignment, description, request, requested_of)
    _print_one(session, found, lang)


@obstacles_app.command()
def assign(
    ctx: typer.Context,
    name: NameArg,
    unit: Annotated[str, typer.Option("--unit", help="The unit that resolves it, e.g. STC.")] = "",
    official: Annotated[str, typer.Option("--official", help="Or the official who resolves it: name, position.")] = "",
    lang: LangOption = Lang.vi,
) -> None:
    """Name who resolves an obstacle (committee): a unit or an official, exactly one."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.assign_obstacle(name, unit=unit, official=official)
    _print_one(session, found, lang)


@obstacles_app.command()
def resolve(
    ctx: typer.Context,
    name: NameArg,
    resolution: Annotated[str, typer.Option("--resolution", "-r", help="How it was resolved (required).",
                                            show_default=False)],
    lang: LangOption = Lang.vi,
) -> None:
    """Close an obstacle with its resolution (committee, final)."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.resolve_obstacle(name, resolution)
    _print_one(session, found, lang)


@obstacles_app.command("list")
def list_(
    ctx: typer.Context,
    assignment: Annotated[str | None, typer.Option("--assignment", help="One assignment's obstacles.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="A unit's obstacles, e.g. SNV.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="open, assigned, resolved, or unresolved (open or assigned).")] = None,
    age: Annotated[str | None, typer.Option(
        "--age", help="Days since reported: '>30', '>=30', '<7', '<=7' or '30'.")] = None,
    reported_in: Annotated[str | None, typer.Option(
        "--reported-in", help="Reported in a quarter (2026-Q3) or between dates (2026-07-01..2026-08-15).")] = None,
    resolved_in: Annotated[str | None, typer.Option(
        "--resolved-in", help="Resolved in a quarter (2026-Q3) or between dates (2026-07-01..2026-08-15).")] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """List obstacles, oldest first, with their age in days and who resolves them."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_obstacles(assignment=assignment, unit=unit, status=status, age=age,
                                           reported_in=reported_in, resolved_in=resolved_in))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    if not found:
        session.out.print(_w("none", lang))
        return
    table = Table(title=_w("obstacles", lang), show_lines=True)
    table.add_column(_w("obstacle", lang), no_wrap=True)
    table.add_column(_w("unit", lang), no_wrap=True)
    table.add_column(_w("status", lang), no_wrap=True)
    table.add_column(_w("days_open", lang), justify="right", no_wrap=True)
    table.add_column(_w("description", lang), overflow="fold")
    table.add_column(_w("resolver", lang), overflow="fold")
    for o in found:
        reported = Text(f"{o.description}\n{o.reported_by}, {hanoi_time(o.report_time, seconds=False)}")
        table.add_row(o.name, o.unit.removeprefix("units/"), status_label(o.status, lang), str(o.days_open),
                      reported, _resolver(o) or "-")
    session.out.print(table)
    if any(o.status != obstacles_pb2.OBSTACLE_STATUS_RESOLVED for o in found):
        session.out.print(Text(_w("hint", lang), style="dim"))


@obstacles_app.command()
def show(ctx: typer.Context, name: NameArg, lang: LangOption = Lang.vi) -> None:
    """One obstacle: what blocks the assignment, what the unit asks for, who resolves it and how."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        o = client.get_obstacle(name)
    if session.json_output:
        session.print_json(message_dict(o))
        return
    table = Table(title=o.name, show_header=False, show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")
    rows = [
        (_w("status", lang), f"{status_label(o.status, lang)} · {o.days_open} {_w('days_open', lang).lower()}"),
        (_w("assignment", lang), f"{o.assignment} · {o.assignment_title}"),
        (_w("unit", lang), o.unit),
        (_w("description", lang), o.description),
        (_w("request", lang), o.request),
        (_w("requested_of", lang), o.requested_of or "-"),
        (_w("reported_by", lang), f"{o.reported_by}, {hanoi_time(o.report_time)}"),
    ]
    if o.assigned_by:
        rows += [(_w("resolver", lang), _resolver(o)),
                 (_w("assigned_by", lang), f"{o.assigned_by}, {hanoi_time(o.assign_time)}")]
    if o.resolved_by:
        rows += [(_w("resolution", lang), o.resolution),
                 (_w("resolved_by", lang), f"{o.resolved_by}, {hanoi_time(o.resolve_time)}")]
    for label, value in rows:
        table.add_row(label, Text(value))
    session.out.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(obstacles_app, name="obstacles")
