"""Errors inside a page: a user's mistake is shown as its message; a bug is logged with an id and shown
as a short message with that id, never as a traceback. Server paths never reach the page."""
from __future__ import annotations

import logging
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import streamlit as st

from recommender.errors import LookbookError

log = logging.getLogger("lookbook.app")

# An absolute path inside a message (after a space, quote, bracket or at the start).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])(?:~|/)(?:[^\s'\"`,;()\[\]{}]*/)+([^\s'\"`,;()\[\]{}]*)")


def public_message(message: str) -> str:
    """``message`` with every absolute server path cut to its last part (a file or folder name)."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1) or Path(match.group(0)).name, message)


def report_bug(exc: BaseException) -> str:
    """Log ``exc`` with its traceback under a new id; returns the id the page shows."""
    error_id = uuid.uuid4().hex[:8]
    log.error("error %s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
    return error_id


def show_bug(error_id: str) -> None:
    st.error(
        f"Something went wrong on our side (error id {error_id}). It is logged on the server; "
        "try again, or quote the id when you report it.",
        icon=":material/bug_report:",
    )


@contextmanager
def errors_shown() -> Iterator[None]:
    """Whatever goes wrong inside is shown in the page, and the rest of the page still renders."""
    try:
        yield
    except LookbookError as exc:
        st.error(public_message(str(exc)), icon=":material/error:")
    except Exception as exc:  # a bug: the details go to the server log only
        show_bug(report_bug(exc))
