"""An account as support sees it: ``GET /v1/users/{user_id}`` (support and admins; a customer, their own).

The same answer as ``GET /v1/users/me`` gives its user (profile, status, preferences, addresses,
devices), from the replica; a customer asking for another account learns nothing of it (404).
"""

from __future__ import annotations

import falcon

from ingress import answers
from ingress.policy import Resource, authorize
from ingress.problems import Problem
from ingress.queries import Queries


class UsersResource:
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        account = self.queries.profile(user_id, fresh=False)
        authorize(req.context.principal, "account.read", Resource(user_id=user_id, exists=account is not None))
        if account is None:  # support may ask for any account, and learns it does not exist
            raise Problem(404, "not-found", "not found")
        answers.write(resp, account)
