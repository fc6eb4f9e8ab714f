"""The moderation hook: a function every gateway calls on each comment before publishing it, which lets the
comment through, masks words in it, or rejects it.

A moderator is any ``async (room, user, text) -> Verdict``. The gateway loads one by name
(``--moderator moderation:blocklist``, the default), and always calls it under a deadline
(:func:`with_deadline`), because a real moderation service is a network call that can be slow or down.
This file's blocklist is the cheap first line: it runs in the gateway in microseconds. A real deployment puts
a content-moderation service behind it (your own classifier, or a vendor's text-moderation API) by writing
another moderator and naming it on the command line: it goes exactly where :func:`blocklist` is called.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MASKED_WORDS",
    "REJECTED_PATTERNS",
    "Blocklist",
    "Moderator",
    "Verdict",
    "blocklist",
    "load_moderator",
    "with_deadline",
]


@dataclass(frozen=True)
class Verdict:
    """What the moderator decided.

    Attributes:
        action: ``allow`` (publish as sent), ``mask`` (publish ``text``, which hides some words) or
            ``reject`` (publish nothing; the sender gets an error).
        text: What to publish.
        reason: Why, for the sender's error message and the logs.
    """

    action: Literal["allow", "mask", "reject"]
    text: str
    reason: str = ""


Moderator = Callable[[str, str, str], Awaitable[Verdict]]
"""``await moderator(room, user, text)`` -> :class:`Verdict`."""

MASKED_WORDS = ("idiot", "stupid", "笨蛋", "垃圾")
"""Words replaced by asterisks (a stand-in list; yours comes from your trust-and-safety team)."""
REJECTED_PATTERNS = (
    r"https?://\S+",  # links: the classic spam in a busy room
    r"\bwww\.\S+",
    r"(加|\+)\s*(微信|vx|v信|qq)",  # "add me on WeChat": contact details for scams
    r"\b(telegram|whatsapp)\b",
)
"""Comments that match any of these are refused outright."""


# --8<-- [start:moderation]
class Blocklist:
    """Masks listed words and rejects comments that match a pattern; matching ignores case and width."""

    def __init__(self, masked_words: Iterable[str], rejected_patterns: Iterable[str]) -> None:
        words = sorted({self.normalize(w) for w in masked_words}, key=len, reverse=True)
        self.masked = re.compile("|".join(re.escape(w) for w in words)) if words else None
        self.rejected = [re.compile(p, re.IGNORECASE) for p in rejected_patterns]

    @staticmethod
    def normalize(text: str) -> str:
        # NFKC folds full-width letters (ｓｔｕｐｉｄ) into ASCII; casefold ignores case
        return unicodedata.normalize("NFKC", text).casefold()

    async def __call__(self, room: str, user: str, text: str) -> Verdict:
        folded = self.normalize(text)
        for pattern in self.rejected:
            if pattern.search(folded):
                return Verdict("reject", "", "links and contact details are not allowed")
        if self.masked is not None and self.masked.search(folded):
            # NFKC and casefold can change lengths, so mask in the folded text and publish that
            return Verdict("mask", self.masked.sub(lambda m: "*" * len(m[0]), folded), "masked words")
        return Verdict("allow", text)


def blocklist() -> Moderator:
    """The default moderator: :data:`MASKED_WORDS` and :data:`REJECTED_PATTERNS`."""
    return Blocklist(MASKED_WORDS, REJECTED_PATTERNS)


def with_deadline(moderator: Moderator, seconds: float, *, on_timeout: str = "reject") -> Moderator:
    """``moderator`` that answers within ``seconds``: a remote service that is slow or down must not stall
    the room. ``on_timeout`` is a policy choice: ``reject`` (fail closed: nothing unchecked is shown) or
    ``allow`` (fail open: the room stays lively while moderation is down)."""

    async def guarded(room: str, user: str, text: str) -> Verdict:
        try:
            return await asyncio.wait_for(moderator(room, user, text), seconds)
        except TimeoutError:
            if on_timeout == "allow":
                return Verdict("allow", text, "moderation timed out: allowed unchecked")
            return Verdict("reject", "", "moderation is busy: try again")

    return guarded


# --8<-- [end:moderation]


def load_moderator(spec: str) -> Moderator:
    """The moderator a ``module:factory`` name points at, e.g. ``moderation:blocklist``.

    Raises:
        ValueError: the name does not point at a callable factory.
    """
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ValueError(f"{spec!r}: expected module:factory, e.g. moderation:blocklist")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{spec!r}: {error}") from None
    if not callable(factory):
        raise ValueError(f"{spec!r} is not callable")
    return factory()
