"""The floor of the ingress benchmark: the hello-world plus only what every accepted command must cost.

One rate-limit check in Redis (the ingress's own GCRA script, one round trip) and one Kafka
produce confirmed before the 202 (the ingress's own ``KafkaBus``), with a command encoded
once at start. No token, no schema, no catalog, no envelope per request: no ingress that
checks a limit in Redis and confirms each command on Kafka can answer faster than this,
under the same gunicorn config on the same machine.
"""

from datetime import UTC, datetime

import falcon
import redis

from ingress.bus import KafkaBus
from ingress.ratelimit import Limit, RateLimiter
from topology.envelope import Producer, envelop
from topology.messages import OrderItem, PlaceOrderV2
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS


class Floor:
    def __init__(self, settings: Settings) -> None:
        self.limiter = RateLimiter(redis.Redis.from_url(settings.redis_url, socket_timeout=2), settings.redis_prefix)
        self.limit = Limit(settings.rate_writes_per_s, settings.rate_burst)
        self.bus = KafkaBus(settings)
        command = PlaceOrderV2(
            order_id="o_floor",
            customer_id="floor",
            lines=[OrderItem("mug", 1)],
            payment_token="tok_visa",
        )
        self.envelope = envelop(command, producer=Producer("user", "floor"), occurred_at=datetime.now(UTC))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        if not self.limiter.check("user:floor", "write", self.limit).allowed:
            raise falcon.HTTPTooManyRequests()
        self.bus.send(ORDER_COMMANDS, "o_floor", self.envelope)
        resp.status = falcon.HTTP_202
        resp.media = {"hello": "world"}


def app_from_env() -> falcon.App:  # type: ignore[type-arg]
    app = falcon.App()
    app.add_route("/floor", Floor(Settings.from_env()))
    return app
