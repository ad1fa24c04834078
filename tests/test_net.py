"""The one network policy: offline means no download and no probe; a server that does not answer is known in
seconds; a failed transfer becomes one reason; the run context decides, once, whether ganbench is offline."""

import socket

import pytest

import ganbench.net as net
from ganbench.context import RunContext
from ganbench.data.roots import try_download
from ganbench.errors import GanbenchError


def test_offline_never_calls_the_download(monkeypatch):
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    monkeypatch.setattr(net, "unreachable", lambda *a, **k: pytest.fail("probed the network while offline"))
    problem = try_download("https://example.org/x.tar.gz", lambda root: pytest.fail("downloaded while offline"))
    assert problem == "not downloaded: GANBENCH_OFFLINE is set"


def test_unreachable_server_skips_the_download_and_failures_become_one_reason(monkeypatch, tmp_path):
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(net, "unreachable", lambda url: "example.org unreachable (no route)")
    assert try_download("https://example.org/x", lambda root: pytest.fail("tried")) == (
        "download impossible: example.org unreachable (no route)"
    )
    seen = []

    def fails(root):
        seen.append((root, socket.getdefaulttimeout()))
        raise RuntimeError("Error downloading x:\nTried a mirror,\n got 404")

    monkeypatch.setattr(net, "unreachable", lambda url: None)
    assert (
        try_download("https://example.org/x", fails) == "download failed: Error downloading x: Tried a mirror, got 404"
    )
    assert seen == [(tmp_path, net.DOWNLOAD_TIMEOUT_S)] and socket.getdefaulttimeout() is None


def test_reachability_check_is_bounded():
    # a port nothing listens on: refused at once, and the answer is a reason, not an exception
    assert "unreachable" in net.unreachable("http://127.0.0.1:9", timeout=1.0)


@pytest.mark.parametrize(
    ("value", "offline"),
    [("", False), ("0", False), ("false", False), ("no", False), ("off", False),
     ("1", True), ("true", True), ("YES", True), ("on", True)],
)  # fmt: skip
def test_one_reading_of_ganbench_offline_everywhere(monkeypatch, value, offline):
    monkeypatch.setenv("GANBENCH_OFFLINE", value)
    assert RunContext.from_environment().offline is offline
    assert net.offline() is offline  # every helper asks the context: one answer
    with RunContext.from_environment(environ={}).replace(offline=not offline).active():
        assert net.offline() is (not offline)  # a run's context wins over the environment of its worker


def test_an_unreadable_offline_setting_is_one_line(monkeypatch):
    monkeypatch.setenv("GANBENCH_OFFLINE", "maybe")
    with pytest.raises(GanbenchError, match="GANBENCH_OFFLINE='maybe' is neither true nor false; set it to 1 or 0"):
        RunContext.from_environment()
