-- The read models the sinks fill and the ingress reads. Rows of entities carry the seq of
-- the newest event applied (version); sinks never let an older or repeated event change them.
-- depends:

CREATE TABLE orders (
    order_id      text PRIMARY KEY,
    customer_id   text,
    status        text NOT NULL,
    total_amount  bigint,
    currency      char(3),
    placed_at     timestamptz,
    carrier       text,
    tracking_code text,
    cancel_reason text,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL CHECK (version > 0)
);
CREATE INDEX orders_by_customer ON orders (customer_id, placed_at DESC);

CREATE TABLE order_lines (
    order_id    text NOT NULL,
    line_no     integer NOT NULL,
    sku         text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_amount bigint NOT NULL CHECK (unit_amount >= 0),
    currency    char(3) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_history (
    order_id    text NOT NULL,
    version     bigint NOT NULL,
    status      text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id    text NOT NULL,
    PRIMARY KEY (order_id, version)
);

CREATE TABLE payments (
    order_id          text PRIMARY KEY,
    payment_id        text,
    status            text NOT NULL,
    authorized_amount bigint,
    captured_amount   bigint,
    currency          char(3),
    decline_reason    text,
    updated_at        timestamptz NOT NULL,
    version           bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE payment_refunds (
    order_id    text NOT NULL,
    version     bigint NOT NULL,
    payment_id  text NOT NULL,
    amount      bigint NOT NULL CHECK (amount >= 0),
    currency    char(3) NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, version)
);

CREATE TABLE stock (
    sku        text PRIMARY KEY,
    total      integer NOT NULL,
    reserved   integer NOT NULL,
    available  integer NOT NULL CHECK (available >= 0),
    updated_at timestamptz NOT NULL,
    version    bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE users (
    user_id       text PRIMARY KEY,
    email         text,
    name          text,
    phone         text,
    registered_at timestamptz,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL CHECK (version > 0)
);
CREATE INDEX users_by_email ON users (lower(email));

CREATE TABLE products (
    sku              text PRIMARY KEY,
    title            text NOT NULL,
    description      text NOT NULL,
    brand            text NOT NULL,
    category         text NOT NULL,
    tags             text[] NOT NULL,
    price_amount     bigint NOT NULL CHECK (price_amount >= 0),
    currency         char(3) NOT NULL,
    owner_partner_id text,
    updated_at       timestamptz NOT NULL,
    version          bigint NOT NULL CHECK (version > 0)
);
