"""What one look at an upload or a snapshot decided (:class:`IntakeResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.core.errors import PipelineError, describe
from shared.core.metrics import rejection_rule


class IntakeOutcome(StrEnum):
    QUEUED = "queued"  # a build request was sent
    PENDING = "pending"  # not ready yet: the re-check timer looks again
    DUPLICATE = "duplicate"  # already queued (or rejected) for this exact content
    REJECTED = "rejected"  # dead-lettered with its reason
    IGNORED = "ignored"  # not for intake (no route, no tag, not a VHD...)
    GONE = "gone"  # the blob or snapshot no longer exists


@dataclass(frozen=True)
class IntakeResult:
    outcome: IntakeOutcome
    source: str
    request_id: str | None = None
    reason: str | None = None
    detail: str = ""

    def log_fields(self) -> dict[str, str]:
        fields = {"source": self.source, "outcome": str(self.outcome)}
        if self.request_id:
            fields["request_id"] = self.request_id
        if self.reason:
            fields["reason"] = self.reason
        return fields


@dataclass(frozen=True)
class Rejection:
    """Why a request is dead-lettered: the dead-letter reason and its description, and the
    rule it counts under in ``gallery.requests.rejected`` (empty: the reason)."""

    reason: str
    description: str
    rule: str = ""

    @classmethod
    def of_error(cls, error: PipelineError) -> Rejection:
        """The rejection of an error: every problem described, the first problem's rule."""
        return cls(error.reason, describe(error), rejection_rule(error))
