-- Credentials the ingress owns (not read models): users' password hashes and partners' OAuth2 clients.
-- depends: 0001_read_models

CREATE TABLE credentials (
    user_id       text PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{customer}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX credentials_email ON credentials (lower(email));

CREATE TABLE partner_clients (
    client_id   text PRIMARY KEY,
    partner_id  text NOT NULL,
    secret_hash text NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
