"""An idle WebSocket tunnel outlives 60 s (where nginx's default proxy_read_timeout cuts
it), while Gatehouse's other timeouts are short: tunnels follow the route's tunnel_idle."""

from __future__ import annotations

import time
import unittest

from harness import Gatehouse, make_config
from websocket import Replica, WebSocket, node_ready


@unittest.skipIf(node_ready(), node_ready() or "")
class TunnelIdleTest(unittest.TestCase):
    def test_idle_tunnel_outlives_60_seconds(self):
        replica = Replica("idle")
        self.addCleanup(replica.kill)
        config = make_config({"app": [replica.address]},
                             timeouts={"keepalive": "5s", "upstream_read": "5s",
                                       "client_body": "5s"})
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        ws = WebSocket(gatehouse.port, timeout=90)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        ws.read_message()  # greeting
        time.sleep(65)
        ws.send_message(b"still here")
        self.assertEqual(ws.read_message()[1], b"still here")


if __name__ == "__main__":
    unittest.main()
