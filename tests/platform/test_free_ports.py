"""Ports handed to child processes are chosen where no outgoing connection can take them first."""

from __future__ import annotations

import socket

from support.stack import LOWEST_PORT, _ephemeral_start, free_ports


def test_free_ports_lie_below_the_ephemeral_range_and_are_free() -> None:
    for count in (1, 3, 9):
        first = free_ports(count)
        assert LOWEST_PORT <= first and first + count <= _ephemeral_start()
        for port in range(first, first + count):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))  # raises if taken
