"""The operator's quotas on the real engine: set on create, changed, shown, and kept over sleep."""

import pytest

from provisioner.host import lifecycle
from provisioner.host.errors import FacilityCommandFailed, InvalidArgument

pytestmark = pytest.mark.docker


def test_quota_is_set_on_create_changed_and_shown(live):
    live.create("quota", quota="300MiB", conversation_quota="20MiB")
    try:
        shown = live.show("quota")
        assert shown["quota"] == "300MiB" and shown["conversation_quota"] == "20MiB"
        assert shown["quota_bytes"] == 300 * 1024**2 and 0 < shown["used_bytes"] < 1024**2
        with pytest.raises(InvalidArgument):
            live.set_quota("quota", "1GB")
        changed = live.set_quota("quota", "1GiB")
        assert changed["quota"] == "1GiB" and changed["conversation_quota"] == "20MiB"
        # Asleep: show does not wake it to ask; set-quota wakes it, and the quotas were kept.
        assert lifecycle.put_to_sleep(live.config, live.backend, "quota", require_idle=None)
        assert live.show("quota")["quota"] is None
        woken = live.set_quota("quota", conversation_quota="50MiB")
        assert woken["quota"] == "1GiB" and woken["conversation_quota"] == "50MiB"
        assert live.show("quota")["status"] == "running"
        live.stop("quota")
        with pytest.raises(FacilityCommandFailed, match="start it first"):
            live.set_quota("quota", "2GiB")
    finally:
        live.delete("quota")
