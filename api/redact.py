"""Keep credentials out of logs: `?token=` and `?ticket=` values are masked wherever uvicorn
(or anyone) logs a path with its query string."""

from __future__ import annotations

import logging
import re

_SECRET_PARAM = re.compile(r"((?:^|[?&;])(?:token|ticket|access_token)=)[^&\s\"';]+", re.I)


def redact(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", text)


class RedactQueryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_redaction() -> None:
    flt = RedactQueryFilter()
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "switchboard"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
            logger.addFilter(flt)
