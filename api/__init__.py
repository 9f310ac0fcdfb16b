"""Switchboard: an authenticated, multi-tenant realtime API."""
