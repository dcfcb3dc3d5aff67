"""The one small error hierarchy of the pipeline.

Every failure the pipeline can meet is either *permanent* (the input or the target is wrong:
reject it, dead-letter it with a reason, never retry) or *transient* (the platform is busy or
briefly broken: retry later). Adapters translate azure-core exceptions into these classes, so
handlers in ``functions/`` only ever decide between the two.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path), which rule, and how to fix it."""

    path: str
    rule: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} (fix: {self.hint})" if self.hint else text


class PipelineError(Exception):
    """Base class; never raised directly."""

    #: Short machine-readable reason, used e.g. as the Service Bus dead-letter reason.
    reason: str = "PipelineError"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class PermanentError(PipelineError):
    """The request cannot succeed as it is. Reject it with its reason; retrying cannot help."""

    reason = "PermanentError"


class TransientError(PipelineError):
    """A temporary condition (throttling, timeouts, a busy source). Retry, maybe after a delay."""

    reason = "TransientError"

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class ValidationFailed(PermanentError):
    """Input failed validation; carries every problem found, not only the first."""

    reason = "ValidationFailed"

    def __init__(self, problems: list[Problem], *, subject: str = "request") -> None:
        if not problems:
            raise ValueError("ValidationFailed needs at least one problem")
        self.problems = list(problems)
        self.subject = subject
        summary = "; ".join(str(p) for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid {subject}: {count} {noun}: {summary}")


class ConflictError(PermanentError):
    """The target already exists in a different, incompatible shape (never overwritten)."""

    reason = "Conflict"


class NotFoundError(PermanentError):
    """A resource the request depends on does not exist."""

    reason = "NotFound"


def describe(error: PipelineError) -> str:
    """A rejection's description (the dead-letter description): for a validation failure every
    problem with its field, rule and fix; otherwise the error's message."""
    if not isinstance(error, ValidationFailed):
        return error.message
    parts = []
    for problem in error.problems:
        text = f"{problem.path or '(document)'} [{problem.rule}]: {problem.message}"
        parts.append(f"{text} (fix: {problem.hint})" if problem.hint else text)
    noun = "problem" if len(parts) == 1 else "problems"
    return f"invalid {error.subject}: {len(parts)} {noun}: " + "; ".join(parts)
