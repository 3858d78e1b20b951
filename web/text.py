"""Text from the catalogue or a user, shown literally inside Streamlit markdown."""
from __future__ import annotations

import re
import string

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and escaping all of them
# also defuses Streamlit's own directives (`:red[…]`, `:material/icon:`), which a narrower list misses.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def md(text: object) -> str:
    """``text`` as markdown that renders exactly as ``text`` (no emphasis, links, colours or icons)."""
    return _PUNCTUATION.sub(r"\\\1", str(text))
