"""santander/ops/launcher.py: ports for servers about to start."""

from __future__ import annotations

import socket

import pytest

from santander.ops import launcher


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range():
    low, _ = launcher._ephemeral_range()
    ports = [launcher.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    # Below the range outgoing connections take their source ports from.
    assert all(port < low for port in ports)
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    taken = listener.getsockname()[1]
    try:
        # Only the taken port and one other lie below a (pretend) ephemeral range.
        monkeypatch.setattr(launcher, "_ephemeral_range", lambda: (taken + 2, 60999))
        monkeypatch.setattr(launcher, "PORTS_BELOW_EPHEMERAL", 2)
        monkeypatch.setattr(launcher, "_issued_ports", set())
        assert launcher.free_port() == taken + 1
        # Both are now out: the taken one is bound, the other already issued.
        with pytest.raises(RuntimeError, match="no free port"):
            launcher.free_port()
    finally:
        listener.close()
