"""The baseline of the ingress benchmark: a bare Falcon hello-world under the same gunicorn config."""

import falcon


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"hello": "world"}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.status = falcon.HTTP_202
        resp.media = {"hello": "world"}


app = falcon.App()
app.add_route("/hello", Hello())
