-- A user's account beyond the profile. Read models the sinks fill from the users' events, one row per
-- user each (preferences, saved addresses and push devices as JSON documents, the status), and the
-- account's status in the credentials, the one login and refresh obey (`shopstream user suspend`).
-- depends: 0003_payment_customers

CREATE TABLE user_preferences (
    user_id     text PRIMARY KEY,
    preferences jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE user_addresses (
    user_id    text PRIMARY KEY,
    addresses  jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE user_devices (
    user_id    text PRIMARY KEY,
    devices    jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE user_status (
    user_id    text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    reason     text NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint NOT NULL CHECK (version > 0)
);

ALTER TABLE credentials
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    ADD COLUMN status_changed_at timestamptz;
