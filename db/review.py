"""Review: submit a draft, approve or reject a submitted label map.

Every step appends a revision that copies the newest label map with the new state (and the
reviewer's comment), so the history shows who decided what and when.
"""
from __future__ import annotations

from sqlalchemy.orm import Session, selectinload

from core.errors import FacetError
from db.models import Revision, RevisionState, Role, User
from db.revisions import ALL_IDS, SaveResult, latest_revision, latest_revisions, save_revision

SUBMITTABLE = (RevisionState.draft, RevisionState.rejected)


def _require_role(session: Session, user_id: int | None, role: Role) -> None:
    """``None`` is the open (no users, loopback) mode and passes; a user needs ``role``."""
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None:
        raise FacetError(f"no user with id {user_id}")
    if not user.role.at_least(role):
        raise FacetError(f"user {user.name!r} has role {user.role.value}; this needs {role.value} or higher")


def _append_state(session: Session, image_id: int, user_id: int | None, state: RevisionState,
                  allowed: tuple[RevisionState, ...], comment: str | None) -> Revision:
    latest = latest_revision(session, image_id)
    if latest is None:
        raise FacetError(f"image {image_id} has no annotation yet")
    if latest.state not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise FacetError(f"image {image_id} revision {latest.revision} is {latest.state.value}; "
                         f"only a {wanted} revision can be {state.value}")
    result: SaveResult = save_revision(
        session, image_id, latest.label_png, user_id, latest.revision, state=state,
        origin=latest.origin, model_version_id=latest.model_version_id, comment=comment,
        num_classes=ALL_IDS)
    if result.conflict:
        raise FacetError(f"image {image_id} changed while this was being decided "
                         f"(now at revision {result.current_revision}); reload and try again")
    return result.revision


def submit(session: Session, image_id: int, author_id: int | None,
           comment: str | None = None) -> Revision:
    """Mark the newest (draft or rejected) label map as ready for review."""
    return _append_state(session, image_id, author_id, RevisionState.submitted, SUBMITTABLE,
                         comment)


def approve(session: Session, image_id: int, reviewer_id: int | None,
            comment: str | None = None) -> Revision:
    """Approve the newest revision, which must be submitted; the reviewer needs that role."""
    _require_role(session, reviewer_id, Role.reviewer)
    return _append_state(session, image_id, reviewer_id, RevisionState.approved,
                         (RevisionState.submitted,), comment)


def reject(session: Session, image_id: int, reviewer_id: int | None,
           comment: str | None = None) -> Revision:
    """Send the newest (submitted) revision back to annotators; it re-enters the queue."""
    _require_role(session, reviewer_id, Role.reviewer)
    return _append_state(session, image_id, reviewer_id, RevisionState.rejected,
                         (RevisionState.submitted,), comment)


def list_submitted(session: Session) -> list[Revision]:
    """Newest revisions waiting for review (state submitted), oldest submission first.

    Each row's ``image`` and ``author`` are loaded.
    """
    query = (latest_revisions().where(Revision.state == RevisionState.submitted)
             .options(selectinload(Revision.image), selectinload(Revision.author))
             .order_by(Revision.created_at, Revision.id))
    return list(session.scalars(query))
