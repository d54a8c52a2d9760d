-- Each user's customer at the payment provider (the ingress owns it, as it owns the credentials):
-- the provider's customer vault keeps the user's saved cards; nothing of a card is stored here.
-- depends: 0002_credentials

CREATE TABLE payment_customers (
    user_id     text PRIMARY KEY,
    customer_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
