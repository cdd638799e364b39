"""What text may become a Prometheus label value: valid Unicode, at most a configured length.

The one gate every string from a log (category values, model and version names) and every
static name from the config passes before it is a label value, because the exposition must be
valid UTF-8 and bounded in size whatever a log line holds. A leaf: string rules only.
"""

from __future__ import annotations


def label_text(text: str, limit: int) -> tuple[str, bool, bool]:
    """``text`` as a label value: ``(value, repaired, cut)``.

    JSON (and YAML) can spell text that is not Unicode: a lone surrogate escape such as
    ``"\\ud800"`` decodes to a code point UTF-8 cannot encode, and one such label value made
    every scrape fail. Each becomes U+FFFD (``repaired``); a split surrogate pair is joined
    back into its character. Text longer than ``limit`` UTF-8 bytes is cut at a character
    boundary (``cut``).
    """
    if text.isascii():  # the usual case: no encoding needed to know the byte length
        if len(text) <= limit:
            return text, False, False
        return text[:limit], False, True
    try:
        data = text.encode("utf-8")
        repaired = False
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        data = text.encode("utf-8")
        repaired = True
    if len(data) <= limit:
        return text, repaired, False
    return data[:limit].decode("utf-8", "ignore"), repaired, True
