import json

import pytest

from agents.sources import SNAPSHOT_PATH
from tests.support.fake_http import FakeServer


@pytest.fixture
def fake_server():
    """Start FakeServer(handler) servers; all are shut down after the test."""
    servers = []

    def start(handler):
        server = FakeServer(handler).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def snapshot_markets():
    """The raw markets of the shipped SAMPLE snapshot."""
    return json.loads(SNAPSHOT_PATH.read_text())["markets"]
