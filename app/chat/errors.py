"""What the chat service refuses before any work is done, and what each refusal means
(app/api/problems.py maps the kind to what a client sees)."""

from __future__ import annotations

from common.errors import DocchatError, Kind


class InvalidQuestion(DocchatError, ValueError):
    """A question that cannot be asked (a blank one)."""

    kind = Kind.INVALID
    code = "invalid_request"


class QuestionTooLong(DocchatError):
    """A question over rag.max_question_chars."""

    kind = Kind.OVER_LIMIT
    code = "question_too_long"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the question is longer than {limit} characters")


class RequestTooLarge(DocchatError):
    """A request over rag.max_messages or rag.max_request_chars."""

    kind = Kind.OVER_LIMIT
    code = "request_too_large"


class ConversationNotFound(DocchatError):
    """No such conversation, or one of another key (which looks the same)."""

    kind = Kind.NOT_FOUND
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such conversation")


class ConversationElsewhere(DocchatError):
    """A question that names another collection than the conversation it continues."""

    kind = Kind.CONFLICT
    code = "conversation_in_another_collection"

    def __init__(self, collection: str) -> None:
        super().__init__(
            f"this conversation answers from collection {collection!r}: start a new one "
            "to ask in another"
        )
