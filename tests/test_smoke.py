from tests.factories import Factory
from tests.support import LiveServer, recv, send


def test_login_join_send(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    factory.room(alice)
    with server.ws(f"/ws?token={alice.access_token}") as ws:
        assert recv(ws)["type"] == "ready"
        send(ws, type="join", room="general")
        assert recv(ws)["type"] == "joined"
