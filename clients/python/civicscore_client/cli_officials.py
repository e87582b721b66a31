"""`civicscore officials list|show|import|deactivate|delete|results|recommendations`: the officials (cá nhân)
the committee may commend or criticise by name, and their results of a quarter.

Personal data: every read needs `personal.read` (committee, admin; a reporter for its units' officials) and
is written to the server's audit log with the reader. Importing and deleting need `officials.write` (admin).
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from civicscore_api.v1 import evaluations_pb2, officials_pb2
from civicscore_client._client import Client
from civicscore_client._errors import CivicscoreError, FailedPrecondition, InvalidArgument
from civicscore_client._import_officials import ParsedOfficials, parse_officials, rejects_of
from civicscore_client._import_records import Reject
from civicscore_client._names import period_id, unit_code
from civicscore_client.cli_locale import (
    Lang,
    LangOption,
    flag_labels,
    hanoi_time,
    integer,
    pick,
    position_label,
    recommendation_review_name,
    word,
)
from civicscore_client.cli_session import message_dict, messages_json, session_of
from civicscore_client.importing import open_import_file

officials_app = typer.Typer(
    help="Officials (cá nhân): the people the committee may commend or criticise by name, their positions and "
         "their results of a quarter. Personal data: reading it needs personal.read and is audited.",
    no_args_is_help=True)

IdArg = Annotated[str, typer.Argument(help="The official, e.g. CB-00123 or officials/CB-00123.", show_default=False)]
QuarterArg = Annotated[str, typer.Argument(help="The quarter, e.g. 2026-Q3.", show_default=False)]
UnitOpt = Annotated[str | None, typer.Option("--unit", help="Only the officials of a unit, e.g. SNV.")]

# Labels of this command group: (Vietnamese, English).
_WORDS: dict[str, tuple[str, str]] = {
    "officials": ("Cán bộ, công chức", "Officials"),
    "official": ("Cán bộ", "Official"),
    "id": ("Mã", "ID"),
    "name": ("Họ và tên", "Full name"),
    "positions": ("Chức vụ", "Positions"),
    "status": ("Trạng thái", "Status"),
    "active": ("Đang được đánh giá", "Evaluated"),
    "inactive": ("Đã thôi đánh giá", "Deactivated"),
    "under_review": ("Quý bị thanh tra, kiểm tra hoặc xem xét kỷ luật", "Quarters under review"),
    "none": ("không có", "none"),
    "now": ("nay", "now"),
    "no_officials": ("Không có cán bộ nào khớp điều kiện lọc.", "No officials match."),
    "unit": ("Đơn vị", "Unit"),
    "position": ("Chức vụ cuối quý", "Position at the quarter's end"),
    "led": ("Nhiệm vụ chủ trì", "Assignments led"),
    "led_counts": ("{due} đến hạn, {on_time} đúng hạn, {overdue} quá hạn chưa xong",
                   "{due} due, {on_time} on time, {overdue} overdue and open"),
    "headed": ("Đứng đầu", "Heads"),
    "flags": ("Cờ đề xuất", "Flags"),
    "reviewed": ("đang bị xem xét", "under review"),
    "results": ("Kết quả đánh giá cá nhân kỳ {period}", "Officials' results {period}"),
    "no_results": ("Không có kết quả đánh giá cá nhân nào của kỳ {period} khớp điều kiện lọc.",
                   "No officials' results for {period} match."),
    "recommendations": ("Đề xuất về cá nhân kỳ {period}", "Recommendations about officials {period}"),
    "no_recommendations": ("Không có đề xuất nào về cá nhân của kỳ {period} khớp điều kiện lọc.",
                           "No recommendations about officials for {period} match."),
    "deactivated": ("Đã thôi đánh giá {name} ({id}): giữ lại cùng các kết quả đã có, không đánh giá từ nay.",
                    "Deactivated {name} ({id}): kept with their past results, no longer evaluated."),
    "already_inactive": ("{name} ({id}) đã thôi đánh giá từ trước; không có gì thay đổi.",
                         "{name} ({id}) was already deactivated; nothing changed."),
    "deleted": ("Đã xoá {id}.", "Deleted {id}."),
    "read": ("{source}: đọc {rows} dòng, {officials} cán bộ", "{source}: {rows} rows read, {officials} officials"),
    "stored": ("  thêm mới {created}, cập nhật {updated}, không đổi {unchanged}",
               "  created {created}, updated {updated}, unchanged {unchanged}"),
    "checked": ("  kiểm tra: dữ liệu hợp lệ; chưa lưu gì (bỏ --check để nhập)",
                "  check: the file is valid; nothing was stored (leave out --check to import it)"),
    "rejected": ("Dòng bị từ chối:", "Rejected lines:"),
    "nothing_stored": ("Chưa lưu gì: mỗi lần nhập lưu cả tệp hoặc không lưu gì, vì một cán bộ được thay thế với "
                       "mọi chức vụ của họ. Sửa các dòng trên rồi nhập lại.",
                       "Nothing was stored: a file is imported whole or not at all, as an official is replaced "
                       "with all their positions. Fix the lines above and import the file again."),
}

# Recommendation statuses and the committee's decisions, by the API's word: (Vietnamese, English).
_STATUSES: dict[str, tuple[str, str]] = {
    "proposed": ("Chờ xem xét", "Proposed"),
    "approved": ("Đã chấp thuận", "Approved"),
    "rejected": ("Không chấp thuận", "Rejected"),
    "deferred": ("Hoãn xem xét", "Deferred"),
    "superseded": ("Đã được thay thế", "Superseded"),
}


def _w(key: str, lang: Lang, **values: object) -> str:
    vi, en = _WORDS[key]
    text = en if lang is Lang.en else vi
    return text.format(**values) if values else text


def _status_label(status: str, lang: Lang) -> str:
    vi, en = _STATUSES.get(status, (status, status))
    return en if lang is Lang.en else vi


def position_name(value: int) -> str:
    """`head` for OFFICIAL_POSITION_HEAD; "" when unspecified."""
    if value == officials_pb2.OFFICIAL_POSITION_UNSPECIFIED:
        return ""
    return officials_pb2.OfficialPosition.Name(value).removeprefix("OFFICIAL_POSITION_").lower()  # type: ignore[arg-type]


def _appointment(a: officials_pb2.Appointment, lang: Lang, unit_names: dict[str, str] | None = None) -> str:
    """`Cấp phó · SCT · 2026-08-01 – nay` (the unit's name before its code when known)."""
    code = unit_code(a.unit)
    unit = f"{unit_names[code]} ({code})" if unit_names and unit_names.get(code) else code
    return (f"{position_label(position_name(a.position), lang)} · {unit} · "
            f"{a.start_on} – {a.end_on or _w('now', lang)}")


def _activity(o: officials_pb2.Official, lang: Lang) -> str:
    return _w("inactive" if o.activity == officials_pb2.OFFICIAL_ACTIVITY_INACTIVE else "active", lang)


@officials_app.command("list")
def list_(
    ctx: typer.Context,
    unit: UnitOpt = None,
    inactive: Annotated[bool, typer.Option(
        "--inactive", help="List the deactivated officials instead of those evaluated.")] = False,
    lang: LangOption = Lang.vi,
) -> None:
    """List the officials evaluated (or, with --inactive, the deactivated ones), by id, with their positions."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_officials(unit=unit, active=not inactive))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    if not found:
        session.out.print(_w("no_officials", lang))
        return
    table = Table(title=f"{_w('officials', lang)} ({integer(len(found), lang)})", show_lines=True)
    table.add_column(_w("id", lang), no_wrap=True)
    table.add_column(_w("name", lang), overflow="fold")
    table.add_column(_w("positions", lang), overflow="fold")
    table.add_column(_w("status", lang), overflow="fold")
    for o in found:
        table.add_row(o.official_id, Text(o.display_name),
                      Text("\n".join(_appointment(a, lang) for a in o.appointments)), _activity(o, lang))
    session.out.print(table)


@officials_app.command()
def show(ctx: typer.Context, official: IdArg, lang: LangOption = Lang.vi) -> None:
    """One official: full name, positions held (unit, dates), whether evaluated, quarters under review."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.get_official(official)
        if session.json_output:
            session.print_json(message_dict(found))
            return
        names = _unit_names(client, [a.unit for a in found.appointments])
    table = Table(title=found.name, show_header=False, show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")
    rows = [
        (_w("name", lang), found.display_name),
        (_w("status", lang), _activity(found, lang)),
        (_w("positions", lang), "\n".join(_appointment(a, lang, names) for a in found.appointments)),
        (_w("under_review", lang), ", ".join(found.under_review_periods) or _w("none", lang)),
    ]
    for label, value in rows:
        table.add_row(label, Text(value))
    session.out.print(table)


def _unit_names(client: Client, units: list[str]) -> dict[str, str]:
    """Units' Vietnamese names by code, for those the caller may read (a reporter may read no unit)."""
    names: dict[str, str] = {}
    for code in dict.fromkeys(unit_code(u) for u in units):
        with suppress(CivicscoreError):
            names[code] = client.get_unit(code).display_name_vi
    return names


@officials_app.command(
    "import",
    short_help="Import officials from a CSV file, one row per appointment; the whole file or nothing.",
    help="Import officials from a CSV file, one row per appointment (several rows per official), created or "
         "replaced by official_id with all their positions. Columns: official_id, display_name, unit, position, "
         "start_on, end_on. position: head, deputy or officer (or Người đứng đầu, Cấp phó, Cán bộ, công chức); "
         "dates YYYY-MM-DD (or DD/MM/YYYY); end_on empty while the position is held. The file is imported whole "
         "or not at all: every rejected line is listed as `line N: column: reason`. An official keeps their "
         "stored activity and the quarters they are under review (read from the server first, an audited read). "
         "Exit code 0 when stored (or valid, with --check), 1 when a line is rejected, 2 when the file cannot be "
         "read.")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="UTF-8 CSV file, with or without BOM.", exists=True, dir_okay=False,
                                         readable=True)],
    check: Annotated[bool, typer.Option(
        "--check", help="Only check the file, here and at the server (validate_only); store nothing.")] = False,
    lang: LangOption = Lang.vi,
) -> None:
    session = session_of(ctx)
    with session.reporting_errors():
        with open_import_file(file) as opened:
            parsed = parse_officials(opened, source=file.name)
        reply = officials_pb2.UpsertOfficialsResponse()
        rejects = list(parsed.rejects)
        if not rejects and parsed.officials:
            with session.connect() as client:
                reply, rejects = _send(client, parsed, check=check)
    if session.json_output:
        session.print_json({
            "source": file.name, "rows_read": parsed.rows_read, "officials": len(parsed.officials), "check": check,
            "stored": not rejects and not check, "created": reply.created, "updated": reply.updated,
            "unchanged": reply.unchanged,
            "rejects": [{"line": r.line, "column": r.column, "reason": r.reason} for r in rejects]})
    else:
        out = session.out
        out.print(Text(_w("read", lang, source=file.name, rows=integer(parsed.rows_read, lang),
                          officials=integer(len(parsed.officials), lang)), style="bold"))
        if rejects:
            out.print(_w("rejected", lang))
            for reject in rejects:
                out.print(Text(f"  {reject}"), soft_wrap=True)
            out.print(_w("nothing_stored", lang), soft_wrap=True)
        elif check:
            out.print(_w("checked", lang))
        else:
            out.print(_w("stored", lang, created=integer(reply.created, lang), updated=integer(reply.updated, lang),
                         unchanged=integer(reply.unchanged, lang)))
    if rejects:
        raise typer.Exit(1)


def _send(client: Client, parsed: ParsedOfficials, *, check: bool
          ) -> tuple[officials_pb2.UpsertOfficialsResponse, list[Reject]]:
    """Upsert the file's officials (or only check them); the server's violations as rejects at their lines."""
    officials = [item.official for item in parsed.officials]
    if check:
        reply = client.upsert_officials(officials, validate_only=True)
        return reply, rejects_of(parsed, reply.violations)
    # An upsert replaces an official whole: keep what the file does not hold, the quarters under review.
    ids = {o.official_id for o in officials}
    stored = {o.official_id: o for o in client.list_officials() if o.official_id in ids}
    for o in officials:
        if o.official_id in stored:
            o.under_review_periods[:] = stored[o.official_id].under_review_periods
    try:
        return client.upsert_officials(officials), []
    except InvalidArgument as err:
        if not err.violations or err.committed:
            raise
        return officials_pb2.UpsertOfficialsResponse(), rejects_of(parsed, err.violations)


@officials_app.command()
def deactivate(ctx: typer.Context, official: IdArg, lang: LangOption = Lang.vi) -> None:
    """Stop evaluating an official (admin); they are kept with their past results.

    An evaluated person is never deleted. Importing them again keeps them deactivated."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = client.get_official(official)
        already = found.activity == officials_pb2.OFFICIAL_ACTIVITY_INACTIVE
        if not already:
            changed = officials_pb2.Official()
            changed.CopyFrom(found)
            changed.ClearField("name")  # output only
            changed.activity = officials_pb2.OFFICIAL_ACTIVITY_INACTIVE
            client.upsert_officials([changed])
            found = client.get_official(official)
    if session.json_output:
        session.print_json(message_dict(found))
        return
    session.out.print(Text(_w("already_inactive" if already else "deactivated", lang, name=found.display_name,
                              id=found.name)))


@officials_app.command()
def delete(ctx: typer.Context, official: IdArg, lang: LangOption = Lang.vi) -> None:
    """Delete an official entered by mistake (admin).

    Refused once they were evaluated or lead an assignment: deactivate them instead."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        try:
            client.delete_official(official)
        except FailedPrecondition as err:  # evaluated or leading: the server says to deactivate, in API words
            session.fail(f"{err.message}. With this command: civicscore officials deactivate {official.strip()}")
    name = official.strip() if official.strip().startswith("officials/") else f"officials/{official.strip()}"
    if session.json_output:
        session.print_json({"deleted": name})
        return
    session.out.print(_w("deleted", lang, id=name))


@officials_app.command()
def results(
    ctx: typer.Context,
    quarter: QuarterArg,
    unit: UnitOpt = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="Only the officials with a flag.")] = False,
    lang: LangOption = Lang.vi,
) -> None:
    """The officials' evaluations of a quarter, by id, with the flags raised.

    For each: the unit they are reached through, their position at the quarter's end, the assignments they
    lead, the units they head, and the flags' labels."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_official_evaluations(quarter, unit=unit, flagged=True if flagged else None))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    period = period_id(quarter)
    if not found:
        session.out.print(_w("no_results", lang, period=period))
        return
    table = Table(title=f"{_w('results', lang, period=period)} ({integer(len(found), lang)})", show_lines=True)
    table.add_column(_w("official", lang), overflow="fold")
    table.add_column(_w("unit", lang), no_wrap=True)
    table.add_column(_w("position", lang), overflow="fold")
    table.add_column(_w("led", lang), overflow="fold")
    table.add_column(_w("headed", lang), overflow="fold")
    table.add_column(_w("flags", lang), overflow="fold")
    for e in found:
        person = Text(e.display_name)
        person.append(f"\n{e.official.removeprefix('officials/')}", style="dim")
        led = _w("led_counts", lang, due=integer(e.led.due, lang), on_time=integer(e.led.on_time, lang),
                 overdue=integer(e.led.open_overdue, lang))
        flags = ", ".join(flag_labels(e.flags, lang)) or "-"
        if e.under_review:
            flags += f"\n({_w('reviewed', lang)})"
        table.add_row(person, unit_code(e.unit), position_label(position_name(e.position), lang) or "-", led,
                      ", ".join(unit_code(u) for u in e.headed_units) or "-", Text(flags))
    session.out.print(table)


@officials_app.command()
def recommendations(
    ctx: typer.Context,
    quarter: QuarterArg,
    unit: UnitOpt = None,
    official: Annotated[str | None, typer.Option("--official", help="Only about this official, e.g. CB-00123.")
                        ] = None,
    flag: Annotated[str | None, typer.Option("--flag", help="Only this flag, e.g. head_accountability.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="proposed, approved, rejected, deferred or superseded.")] = None,
    lang: LangOption = Lang.vi,
) -> None:
    """A quarter's recommendations about officials, for the committee to review with `civicscore review`.

    Each starts with the name `civicscore review` takes, then the official, their unit, the flag's label,
    level and status, the committee's last decision and the reasons."""
    session = session_of(ctx)
    with session.reporting_errors(), session.connect() as client:
        found = list(client.list_official_recommendations(quarter, unit=unit, official=official, flag=flag,
                                                          status=status))
    if session.json_output:
        session.print_json(messages_json(found))
        return
    period = period_id(quarter)
    if not found:
        session.out.print(_w("no_recommendations", lang, period=period))
        return
    out = session.out
    out.print(Text(f"{_w('recommendations', lang, period=period)} ({integer(len(found), lang)})", style="bold"))
    for item in found:
        out.print(Text("\n" + recommendation_review_name(item), style="bold"))
        out.print(Padding(_recommendation_text(item, lang), (0, 0, 0, 2)))
    out.print(Text(word("review_hint", lang), style="dim"))


def _recommendation_text(item: evaluations_pb2.Recommendation, lang: Lang) -> Text:
    """The official and their unit, the flag's label, level and status, the last decision and the reasons."""
    status = evaluations_pb2.RecommendationStatus.Name(item.status).removeprefix(  # type: ignore[arg-type]
        "RECOMMENDATION_STATUS_").lower()
    text = Text(f"{item.official_display_name} ({item.official.removeprefix('officials/')}) · "
                f"{item.unit_display_name_vi} ({unit_code(item.unit)}) · ")
    text.append(pick(lang, item.label_vi, item.label_en) or item.flag, style="bold")
    text.append(f" · {word('level', lang, level=item.level)} · {word('status', lang)}: {_status_label(status, lang)}")
    if item.last_decision:
        when = hanoi_time(item.last_decision_time)
        text.append(f"\n{word('last_decision', lang)}: {_status_label(item.last_decision, lang)} · {item.last_reviewer}"
                    f"{' · ' + when if when else ''}: {item.last_decision_reason}")
    for reason in item.reasons:
        text.append(f"\n• {pick(lang, reason.text_vi, reason.text_en)} ")
        text.append(f"[{reason.rule_id}, {reason.source}]", style="dim")
    return text


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(officials_app, name="officials")

