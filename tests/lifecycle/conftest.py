"""Blob containers of the test's own in the session's Azurite, reached through a request-capturing transport."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import ContainerClient

from tests.conftest import Azurite
from tests.lifecycle.transport import CapturingTransport, capturing_container


@pytest.fixture
def recordings(azurite_service: Azurite) -> Iterator[tuple[ContainerClient, CapturingTransport]]:
    container, transport = capturing_container(azurite_service.connection_string, f"rec-{uuid.uuid4().hex[:12]}")
    container.create_container()
    yield container, transport
    container.delete_container()


@pytest.fixture
def scratch(azurite_service: Azurite) -> Iterator[ContainerClient]:
    container, _ = capturing_container(azurite_service.connection_string, f"scratch-{uuid.uuid4().hex[:12]}")
    container.create_container()
    yield container
    container.delete_container()
