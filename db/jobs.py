"""Background jobs as the UI sees them: state, progress, message, error, logged points.

The worker calls these from inside its tasks; each call flushes, the worker commits so the
UI (another process) sees progress while the task runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import FacetError
from db.models import Job, JobPoint, JobState, ModelVersion, User, utcnow

PENDING = (JobState.queued, JobState.running)
JOB_STATES: tuple[str, ...] = tuple(state.value for state in JobState)
MAX_PAGE = 1000
"""The largest page :func:`page_jobs` returns."""
TRAIN_KIND = "train"
"""The kind of a retraining run's job row (the web side creates it, the worker runs it)."""


class TrainingPendingError(FacetError):
    """A training job is already queued or running (training runs one at a time)."""

    def __init__(self, job_id: int, state: str) -> None:
        super().__init__(f"training job {job_id} is already {state}")
        self.job_id = job_id


def create_job(session: Session, kind: str, params: dict[str, Any] | None = None,
               created_by_id: int | None = None) -> Job:
    """A new queued job of ``kind`` (train | embed | predict | score)."""
    if not kind:
        raise FacetError("a job needs a kind")
    job = Job(kind=kind, state=JobState.queued, progress=0.0, params=dict(params or {}),
              created_by_id=created_by_id, updated_at=utcnow())
    session.add(job)
    session.flush()
    return job


def create_training_job(session: Session, params: dict[str, Any] | None = None,
                        created_by_id: int | None = None) -> Job:
    """A new queued :data:`TRAIN_KIND` job: the one place that keeps training to one run at
    a time. Raises :class:`TrainingPendingError` when one is already queued or running."""
    pending = pending_job(session, TRAIN_KIND)
    if pending is not None:
        raise TrainingPendingError(pending.id, pending.state.value)
    return create_job(session, TRAIN_KIND, params, created_by_id)


def get_job(session: Session, job_id: int) -> Job:
    """The job; :class:`FacetError` when there is none."""
    job = session.get(Job, job_id)
    if job is None:
        raise FacetError(f"no job with id {job_id}")
    return job


def _open_job(session: Session, job_id: int) -> Job:
    job = get_job(session, job_id)
    if job.state not in PENDING:
        raise FacetError(f"job {job_id} already {job.state.value}")
    return job


def mark_running(session: Session, job_id: int) -> Job:
    """Queued → running (a retry after a failure is allowed: failed → running)."""
    job = get_job(session, job_id)
    if job.state == JobState.succeeded:
        raise FacetError(f"job {job_id} already succeeded")
    job.state, job.error, job.finished_at = JobState.running, None, None
    job.started_at = job.updated_at = utcnow()
    session.flush()
    return job


def set_progress(session: Session, job_id: int, progress: float,
                 message: str | None = None) -> Job:
    """Record progress (clamped to 0..1) and an optional one-line message."""
    job = _open_job(session, job_id)
    job.progress = min(1.0, max(0.0, float(progress)))
    if message is not None:
        job.message = message
    job.updated_at = utcnow()
    session.flush()
    return job


def add_point(session: Session, job_id: int, step: int, values: dict[str, float]) -> JobPoint:
    """Log one training step, e.g. ``{"loss": 0.9, "ce": 0.7, "edge": 0.1, "kd": 0.1}``."""
    job = _open_job(session, job_id)
    point = JobPoint(job_id=job_id, step=int(step),
                     values={str(k): float(v) for k, v in values.items()})
    job.updated_at = utcnow()
    session.add(point)
    session.flush()
    return point


def finish(session: Session, job_id: int, message: str | None = None) -> Job:
    """The job succeeded: progress 1, finish time, optional final message."""
    job = _open_job(session, job_id)
    job.state, job.progress = JobState.succeeded, 1.0
    if message is not None:
        job.message = message
    job.finished_at = job.updated_at = utcnow()
    session.flush()
    return job


def fail(session: Session, job_id: int, error: str) -> Job:
    """The job failed with ``error`` (one line the UI shows)."""
    job = _open_job(session, job_id)
    job.state, job.error = JobState.failed, str(error) or "failed"
    job.finished_at = job.updated_at = utcnow()
    session.flush()
    return job


def running_job(session: Session, kind: str) -> Job | None:
    """The newest job of ``kind`` in state running."""
    return session.scalar(select(Job).where(Job.kind == kind, Job.state == JobState.running)
                          .order_by(Job.id.desc()).limit(1))


def pending_job(session: Session, kind: str) -> Job | None:
    """The newest job of ``kind`` that is queued or running (to refuse a second one)."""
    return session.scalar(select(Job).where(Job.kind == kind, Job.state.in_(PENDING))
                          .order_by(Job.id.desc()).limit(1))


def latest_job(session: Session, kind: str) -> Job | None:
    """The newest job of ``kind`` in any state."""
    return session.scalar(select(Job).where(Job.kind == kind).order_by(Job.id.desc()).limit(1))


def list_jobs(session: Session, kind: str | None = None, limit: int = 50) -> list[Job]:
    """Newest jobs first, optionally of one kind."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))


@dataclass(frozen=True)
class JobInfo:
    """A job as the API shows it: the row, who created it, the model version it published
    (``None`` when none), and — from :func:`job_info` only — how many steps it logged and
    the last one."""

    job: Job
    created_by: str | None
    model_version_id: int | None
    points: int | None = None
    last_point: JobPoint | None = None


@dataclass(frozen=True)
class JobPage:
    """One page of jobs, newest first; ``next`` is the id to pass as ``before`` for the page
    after (``None`` on the last page), ``total`` counts every match."""

    items: list[JobInfo]
    total: int
    next: int | None


def _info_columns():
    version = (select(func.max(ModelVersion.id)).where(ModelVersion.job_id == Job.id)
               .correlate(Job).scalar_subquery())
    creator = (select(User.name).where(User.id == Job.created_by_id).correlate(Job)
               .scalar_subquery())
    return creator, version


def page_jobs(session: Session, kind: str | None = None, state: str | None = None,
              limit: int = 100, before: int | None = None) -> JobPage:
    """Newest first, at most ``limit`` (1..:data:`MAX_PAGE`) jobs with ids below ``before``,
    optionally of one ``kind`` and one ``state`` (:data:`JOB_STATES`). Two queries: the page
    and the count. :class:`FacetError` for an unknown state or a bad limit."""
    if not 1 <= limit <= MAX_PAGE:
        raise FacetError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    where = []
    if kind is not None:
        where.append(Job.kind == kind)
    if state is not None:
        if state not in JOB_STATES:
            raise FacetError(f"unknown state {state!r} (one of {', '.join(JOB_STATES)})")
        where.append(Job.state == JobState(state))
    page_where = where + ([Job.id < before] if before is not None else [])
    creator, version = _info_columns()
    rows = session.execute(select(Job, creator, version).where(*page_where)
                           .order_by(Job.id.desc()).limit(limit + 1)).all()
    items = [JobInfo(job, name, version_id) for job, name, version_id in rows[:limit]]
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    return JobPage(items, total, items[-1].job.id if len(rows) > limit else None)


def job_info(session: Session, job_id: int) -> JobInfo | None:
    """One job with its creator, published version, number of logged steps and last step;
    ``None`` when there is no such job."""
    creator, version = _info_columns()
    points = (select(func.count(JobPoint.id)).where(JobPoint.job_id == Job.id).correlate(Job)
              .scalar_subquery())
    row = session.execute(select(Job, creator, version, points).where(Job.id == job_id)).first()
    if row is None:
        return None
    job, name, version_id, count = row
    last = session.scalar(select(JobPoint).where(JobPoint.job_id == job_id)
                          .order_by(JobPoint.step.desc(), JobPoint.id.desc()).limit(1))
    return JobInfo(job, name, version_id, count, last)


def job_points(session: Session, job_id: int) -> list[JobPoint]:
    """The logged steps of a job, by step."""
    return list(session.scalars(select(JobPoint).where(JobPoint.job_id == job_id)
                                .order_by(JobPoint.step, JobPoint.id)))
