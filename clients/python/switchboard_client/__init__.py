"""Switchboard's Python client (asyncio): the server's guarantees carried into the app."""

from switchboard_client.auth import AuthFailed, PasswordLogin
from switchboard_client.client import Client, Closed
from switchboard_client.http import SwitchboardError
from switchboard_client.room import Room

__all__ = ["AuthFailed", "Client", "Closed", "PasswordLogin", "Room", "SwitchboardError"]
