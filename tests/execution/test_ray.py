"""Starting a local Ray: the dashboard's port."""

from __future__ import annotations

import socket

import pytest

from sweeper.execution._ray import _dashboard_port


def test_a_port_a_stopped_dashboard_left_in_time_wait_stays_the_dashboards():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first: its port lingers in TIME_WAIT
    client.close()
    server.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the probe did, and why it moved the dashboard
    assert _dashboard_port(port) == port


def test_a_port_something_listens_on_is_not_the_dashboards():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        moved = _dashboard_port(port)
        assert moved not in (port, 0)
