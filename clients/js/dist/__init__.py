"""The built JavaScript client (`npm run build` writes it here), importable as
`api.webclient` so the server can serve it to the demo page (see pyproject.toml)."""
