"""The wire protocol, in one place: client frames (validated once), server frames (one
encoder each) and the close-code table. docs/protocol.md and the clients follow it."""

from api.protocol import server
from api.protocol.client import (
    MAX_SEQ,
    AuthFrame,
    ClientFrame,
    ClientMsgId,
    DeleteFrame,
    EditFrame,
    FrameRejected,
    JoinFrame,
    LeaveFrame,
    PingFrame,
    ReadFrame,
    SendFrame,
    Seq,
    SignalFrame,
    client_frame_adapter,
    decode_client_frame,
)
from api.protocol.close import ClientAction, Close, CloseCode, client_action

__all__ = [
    "MAX_SEQ",
    "AuthFrame",
    "ClientAction",
    "ClientFrame",
    "ClientMsgId",
    "Close",
    "CloseCode",
    "DeleteFrame",
    "EditFrame",
    "FrameRejected",
    "JoinFrame",
    "LeaveFrame",
    "PingFrame",
    "ReadFrame",
    "SendFrame",
    "Seq",
    "SignalFrame",
    "client_action",
    "client_frame_adapter",
    "decode_client_frame",
    "server",
]
