"""Passive health: connect failures and malformed responses take a host out of rotation
for passive_cooldown after passive_failures in a row; with every host out, panic decides
between 503 and trying them anyway."""

from __future__ import annotations

import unittest

from harness import Gatehouse, HttpClient, Upstream, garbage_handler, make_config


class PassiveHealthTest(unittest.TestCase):
    def start(self, upstreams, **upstream_keys) -> Gatehouse:
        config = make_config({"app": {"servers": upstreams, "passive_failures": 2,
                                      "passive_cooldown": "30s", **upstream_keys}})
        gatehouse = Gatehouse(config).start()
        self.addCleanup(gatehouse.stop)
        return gatehouse

    def upstream(self, handler=None) -> Upstream:
        u = Upstream(handler) if handler else Upstream()
        self.addCleanup(u.close)
        return u

    @staticmethod
    def statuses(port: int, count: int) -> list[int]:
        out = []
        for _ in range(count):
            with HttpClient(port) as client:
                out.append(client.request("GET", "/").status)
        return out

    def test_failing_host_leaves_rotation(self):
        bad, good = self.upstream(garbage_handler), self.upstream()
        gatehouse = self.start([bad, good])
        statuses = self.statuses(gatehouse.port, 12)
        self.assertEqual(statuses.count(502), 2, statuses)  # round robin hits bad twice
        self.assertEqual(bad.connections, 2)
        self.assertEqual(len(good.requests), 10)

    def test_all_hosts_down_without_panic_is_503(self):
        gatehouse = self.start([self.upstream(garbage_handler), self.upstream(garbage_handler)])
        statuses = self.statuses(gatehouse.port, 6)
        self.assertEqual(statuses[:4], [502, 502, 502, 502])
        self.assertEqual(statuses[4:], [503, 503])

    def test_all_hosts_down_with_panic_still_tries_them(self):
        bad = [self.upstream(garbage_handler), self.upstream(garbage_handler)]
        gatehouse = self.start(bad, panic=True)
        self.assertEqual(self.statuses(gatehouse.port, 6), [502] * 6)
        self.assertEqual(sum(u.connections for u in bad), 6)


if __name__ == "__main__":
    unittest.main()
