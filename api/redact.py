"""Log hygiene. Credentials stay out of logs: the values of `token`, `ticket` and
`access_token` query parameters are masked wherever uvicorn (or anyone) logs a path with its
query string; names are compared after percent-decoding, as the server itself reads them
(`?%74oken=` is `token`, which a regex on the raw text would miss). And a client's protocol
mistake is counted, not logged with a traceback: anyone could flood the log with them.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from api import metrics

SECRET_PARAMS = frozenset({"token", "ticket", "access_token"})
_QUERY = re.compile(r"\?([^\s\"'#]*)")
_SEPARATORS = re.compile(r"([&;])")
MASK = "[redacted]"


def _redact_query(match: re.Match[str]) -> str:
    parts = _SEPARATORS.split(match.group(1))
    for i in range(0, len(parts), 2):  # even items are parameters, odd ones separators
        name, eq, _ = parts[i].partition("=")
        if eq and unquote_plus(name).strip().lower() in SECRET_PARAMS:
            parts[i] = f"{name}={MASK}"
    return "?" + "".join(parts)


def redact(text: str) -> str:
    return _QUERY.sub(_redact_query, text) if "?" in text else text


class RedactQueryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


# uvicorn's WebSocket implementations log this with a traceback before closing 1007.
INVALID_UTF8_MESSAGE = "Invalid UTF-8 sequence received from client."


class ClientMistakeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == INVALID_UTF8_MESSAGE:
            metrics.INVALID_UTF8_FRAMES.inc()
            return False
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "switchboard"):
        _add_once(logging.getLogger(name), RedactQueryFilter())
    _add_once(logging.getLogger("uvicorn.error"), ClientMistakeFilter())


def _add_once(logger: logging.Logger, flt: logging.Filter) -> None:
    if not any(type(f) is type(flt) for f in logger.filters):
        logger.addFilter(flt)
