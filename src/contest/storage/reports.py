"""Run reports and final reports of a job."""

from __future__ import annotations

import time

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.storage import limits as L
from contest.storage.events import decode_json, encode_json
from contest.storage.models import JobReport, Report
from contest.storage.schema import reports


def report_row(report: Report, limits: L.Limits) -> dict[str, object]:
    """The checked row of a report (raises before any SQL on a bad one)."""
    L.check(L.REPORTER_NAME[0], report.reporter_name, L.REPORTER_NAME[1])
    if report.run_id < 0:
        raise ValueError(f"run ID must be 0 (final report) or positive, got {report.run_id}")
    return {
        "job_id": report.job_id,
        "run_id": report.run_id,
        "reporter_name": report.reporter_name,
        "success": report.success,
        "data": encode_json(report.data, "Report data", limits.report_data),
        "report_time": report.report_time or time.time(),
    }


async def insert_report(conn: AsyncConnection, row: dict[str, object]) -> None:
    await conn.execute(insert(reports).values(**row))


async def fetch_job_report(conn: AsyncConnection, job_id: int) -> JobReport:
    """All reports of a job; run reports grouped by run (gaps become empty lists), each group
    and the final reports ordered by reporter name, by code point (``TargetSuccess`` before
    ``noop``), then by storing order. Sorted here, not by the database: ``ORDER BY`` on a
    name follows the column's collation, which on PostgreSQL is the database's locale
    (``noop`` first under ``en_US``), so the same job would read differently on each database
    (docs/migrating-from-contest.md, "Run reports' order")."""
    r = reports
    rows = list(
        (
            await conn.execute(
                select(
                    r.c.run_id,
                    r.c.reporter_name,
                    r.c.success,
                    r.c.data,
                    r.c.report_time,
                    r.c.report_id,
                ).where(r.c.job_id == job_id)
            )
        ).all()
    )
    rows.sort(key=lambda row: (row[0], row[1], row[5]))
    out = JobReport(job_id)
    for run_id, name, success, data, when, _ in rows:
        rep = Report(
            job_id,
            run_id,
            name,
            None if success is None else bool(success),
            decode_json(data),
            when,
        )
        if run_id == 0:
            out.final_reports.append(rep)
        else:
            while len(out.run_reports) < run_id:
                out.run_reports.append([])
            out.run_reports[run_id - 1].append(rep)
    return out
