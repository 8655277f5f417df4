"""Cron schedule arithmetic: the next run times of an expression in a time zone. Pure
computation (no database, no engine), shared by the workflow document and the cron runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from workflows.validators import CRON_HORIZON_YEARS


class CronScheduleError(ValueError):
    """An expression or time zone no run time can be worked out from."""


def next_runs(cron: str, time_zone: str, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` run times (aware, in `time_zone`) strictly after `after`.

    Cron reads the zone's wall clock, as Kubernetes' CronJob `timeZone` and Vixie cron do:
    every wall-clock time the expression names runs once. A time the clock skips when it
    springs forward (02:30 on a spring-forward day) runs once, at the moment the clock jumps
    (03:00 new time); a time the clock shows twice when it falls back runs once, the first
    time. Raises CronScheduleError when nothing fires in `CRON_HORIZON_YEARS` years."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronScheduleError(f'"{time_zone}" is not an IANA time zone') from exc
    after = after.astimezone(zone)
    horizon = after + timedelta(days=366 * CRON_HORIZON_YEARS)
    try:
        walls = croniter(cron, after.replace(tzinfo=None, fold=0) - timedelta(minutes=1))
    except (ValueError, KeyError) as exc:
        raise CronScheduleError(f'"{cron}" is not a valid cron schedule') from exc
    runs: list[datetime] = []
    while len(runs) < count:
        try:
            wall = walls.get_next(datetime)
        except CroniterBadDateError as exc:
            raise CronScheduleError(f'"{cron}" never fires') from exc
        moment = _on_clock(wall, zone)
        if moment > horizon:
            raise CronScheduleError(f'"{cron}" never fires in the next {CRON_HORIZON_YEARS} years')
        if moment > after and (not runs or moment > runs[-1]):
            runs.append(moment)
    return runs


def _on_clock(wall: datetime, zone: ZoneInfo) -> datetime:
    """The moment the zone's clock shows `wall` (the first, if it shows it twice), or, if the
    clock skips it, the moment the clock jumps."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads it with the old offset (after the jump), fold=1 with the new one
    # (before it); the jump lies between the two, found to the minute.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first.astimezone(UTC)
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
            low = middle
        else:
            high = middle
    return high.replace(second=0, microsecond=0).astimezone(zone)
