"""Authentication of the ingress: signing keys, access tokens, principals."""
