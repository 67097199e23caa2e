"""gateway.app at start: it says, as a warning, when dev login is on."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from boochat.settings import Settings
from gateway.app import Gateway

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dev_login", [True, False])
async def test_the_gateway_says_at_start_whether_dev_login_is_on(settings: Settings, amqp, dev_login: bool) -> None:
    gateway = Gateway(settings.model_copy(update={"dev_login": dev_login}))
    with capture_logs() as logs:
        await gateway.start()
    try:
        await gateway.connected()
        warnings = [entry for entry in logs if entry["event"] == "dev_login_on"]
        assert len(warnings) == int(dev_login)
        assert all(entry["log_level"] == "warning" and "BOOCHAT_DEV_LOGIN" in entry["message"] for entry in warnings)
    finally:
        await gateway.stop()
