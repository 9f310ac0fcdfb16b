"""settings.toml is written from the settings models (their defaults and reasons), so the
defaults live in one place; a test fails when the checked-in file is stale.

Regenerate it with `python -m api.settings_toml > settings.toml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from api.settings import Settings

HEADER = """\
# Switchboard's settings and their defaults (written by `python -m api.settings_toml`).
# Override any key with SWITCHBOARD_<SECTION>__<KEY>, or point SWITCHBOARD_SETTINGS at
# another file. Secrets never live here: use SWITCHBOARD_JWT_SECRET.
"""
# Settings whose value must not be written down here (it comes from the environment).
COMMENTED_OUT = {("database", "url"), ("broker", "url"), ("auth", "jwt_secret")}


def _toml_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def render(settings: Settings | None = None) -> str:
    defaults = settings or Settings.model_construct()
    lines = [HEADER]
    for section in Settings.model_fields:
        model = getattr(defaults, section)
        assert isinstance(model, BaseModel)
        lines.append(f"[{section}]")
        for key, info in type(model).model_fields.items():
            line = f"{key} = {_toml_value(getattr(model, key))}"
            if (section, key) in COMMENTED_OUT:
                line = "# " + line
            lines.append(f"{line:<40} # {info.description}" if info.description else line)
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
