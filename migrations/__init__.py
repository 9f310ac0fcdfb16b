"""Alembic's revisions, installed as the package `api.migrations` (see pyproject.toml), so
an installed Switchboard migrates its database without a checkout."""
