"""A demo catalog: thousands of realistic products from a seed, loaded through the catalog flow.

``catalog(seed, count)`` is pure: the same seed gives the same products (brands that make
what their category sells, model names, colours, features, descriptions, tags, prices in
each category's range, a stock level, a third of them sold out). ``load`` sends what the
read models do not hold yet as commands, as the ingress would: an ``UpsertProduct`` per
product on the catalog's commands and an ``AdjustStock`` up to its level on the
inventory's, so every read model (PostgreSQL, Redis, search) is built the normal way. A
second load sends nothing for what is already there, and an adjustment carries an id
derived from its SKU and level, which the inventory flow applies once.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from confluent_kafka import Producer as KafkaProducer
from psycopg import sql

from ops.exceptions import OpsError
from topology.access import OPERATOR
from topology.envelope import Producer, encode, envelop
from topology.kafka_client import client_config
from topology.messages import AdjustStock, Money, UpsertProduct
from topology.settings import Settings
from topology.stores import PRODUCTS, STOCK
from topology.topics import CATALOG_COMMANDS, INVENTORY_COMMANDS

CURRENCY = "EUR"
SKU_PREFIX = "demo-"
#: The namespace of the adjustments' command ids (uuid5 of the SKU and its level).
ADJUSTMENTS = uuid.UUID("6f0d7c1e-3b7a-4f43-9c51-2f1c0e9a7d10")


@dataclass(frozen=True)
class Category:
    name: str
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    price: tuple[int, int]  # major units, low and high
    features: tuple[str, ...]
    descriptors: tuple[str, ...]
    uses: tuple[str, ...]
    tags: tuple[str, ...]


CATEGORIES = (
    Category(
        "Running Shoes",
        ("running shoes", "trail running shoes", "racing shoes"),
        ("Nike", "Adidas", "Asics", "Brooks", "Hoka", "New Balance", "Saucony"),
        (55, 220),
        ("a responsive foam midsole", "a breathable mesh upper", "a grippy rubber outsole", "reflective details"),
        ("lightweight", "cushioned", "waterproof", "breathable"),
        ("road running", "marathon training", "trail runs", "daily miles"),
        ("running", "shoes", "sport"),
    ),
    Category(
        "Sneakers",
        ("sneakers", "canvas sneakers", "leather sneakers", "high-top sneakers"),
        ("Nike", "Adidas", "Puma", "Converse", "Vans", "New Balance"),
        (35, 180),
        ("a padded collar", "a vulcanised sole", "a suede toe cap", "an ortholite insole"),
        ("classic", "retro", "minimalist", "chunky"),
        ("everyday wear", "the weekend", "city walks"),
        ("shoes", "casual", "streetwear"),
    ),
    Category(
        "Headphones",
        ("wireless headphones", "noise cancelling headphones", "earbuds", "gaming headset", "over-ear headphones"),
        ("Sony", "Bose", "Sennheiser", "JBL", "Apple", "Jabra", "Anker"),
        (19, 450),
        ("up to 30 hours of battery life", "active noise cancellation", "bluetooth 5.3", "a built-in microphone"),
        ("wireless", "foldable", "lightweight", "premium"),
        ("commuting", "travel", "the gym", "gaming"),
        ("audio", "music", "electronics"),
    ),
    Category(
        "Laptops",
        ("laptop", "ultrabook", "gaming laptop", "2-in-1 laptop", "chromebook"),
        ("Lenovo", "Dell", "HP", "Apple", "Asus", "Acer"),
        (249, 2900),
        ("a 14-inch display", "16 GB of memory", "a 1 TB SSD", "all-day battery life", "a backlit keyboard"),
        ("thin", "powerful", "lightweight", "business"),
        ("work", "study", "gaming", "video editing"),
        ("computers", "electronics", "laptop"),
    ),
    Category(
        "Smartphones",
        ("smartphone", "5G smartphone", "rugged smartphone"),
        ("Samsung", "Apple", "Google", "Xiaomi", "OnePlus", "Motorola", "Nokia"),
        (99, 1500),
        ("a triple camera", "a 120 Hz OLED screen", "128 GB of storage", "fast charging", "a 5000 mAh battery"),
        ("unlocked", "dual-SIM", "compact", "flagship"),
        ("photography", "everyday use", "business"),
        ("phones", "mobile", "electronics"),
    ),
    Category(
        "Televisions",
        ("4K TV", "OLED TV", "smart TV", "QLED TV"),
        ("Samsung", "LG", "Sony", "Philips", "TCL", "Hisense"),
        (199, 3200),
        ("HDR10+ and Dolby Vision", "a 120 Hz panel", "built-in streaming apps", "three HDMI 2.1 ports"),
        ("55-inch", "65-inch", "43-inch", "slim"),
        ("movie nights", "sports", "gaming"),
        ("tv", "home cinema", "electronics"),
    ),
    Category(
        "Coffee Makers",
        ("espresso machine", "coffee maker", "french press", "moka pot", "coffee grinder"),
        ("DeLonghi", "Breville", "Nespresso", "Bialetti", "Krups", "Melitta"),
        (19, 950),
        ("a 15-bar pump", "a milk frother", "a removable water tank", "a conical burr grinder"),
        ("stainless steel", "compact", "programmable", "manual"),
        ("espresso lovers", "busy mornings", "the office kitchen"),
        ("coffee", "kitchen", "appliances"),
    ),
    Category(
        "Kettles",
        ("electric kettle", "stovetop kettle", "gooseneck kettle"),
        ("Russell Hobbs", "Bosch", "Smeg", "Fellow", "Tefal"),
        (18, 190),
        ("a 1.7 litre capacity", "rapid boil", "a limescale filter", "variable temperature control"),
        ("cordless", "retro", "stainless steel", "quiet"),
        ("tea", "pour-over coffee", "the kitchen"),
        ("kitchen", "tea", "appliances"),
    ),
    Category(
        "Mugs",
        ("mug", "travel mug", "espresso cup", "tea cup"),
        ("Le Creuset", "Denby", "Ikea", "Contigo", "Stanley", "Emma Bridgewater"),
        (4, 45),
        ("a 350 ml capacity", "a leak-proof lid", "a dishwasher-safe glaze", "double-wall insulation"),
        ("ceramic", "stoneware", "insulated", "handmade"),
        ("tea", "coffee on the go", "gifts"),
        ("kitchen", "drinkware", "gift"),
    ),
    Category(
        "Sofas",
        ("sofa", "corner sofa", "sofa bed", "loveseat"),
        ("Ikea", "Habitat", "Swyft", "Loaf", "Made"),
        (290, 2600),
        ("removable washable covers", "solid oak legs", "deep seat cushions", "a pull-out bed"),
        ("velvet", "linen", "leather", "modular"),
        ("the living room", "small flats", "guests"),
        ("furniture", "living room", "home"),
    ),
    Category(
        "Lamps",
        ("desk lamp", "floor lamp", "table lamp", "pendant lamp", "reading lamp"),
        ("Ikea", "Philips", "Artemide", "Anglepoise", "Muuto"),
        (14, 620),
        ("a dimmable LED", "an adjustable arm", "a warm white glow", "a fabric shade"),
        ("modern", "industrial", "vintage", "minimalist"),
        ("the home office", "bedside reading", "the living room"),
        ("lighting", "home", "decor"),
    ),
    Category(
        "Backpacks",
        ("backpack", "hiking backpack", "laptop backpack", "daypack"),
        ("Osprey", "Deuter", "The North Face", "Eastpak", "Herschel", "Fjallraven"),
        (24, 290),
        ("a padded 15-inch laptop sleeve", "a ventilated back panel", "a rain cover", "hip belt pockets"),
        ("waterproof", "lightweight", "durable", "roll-top"),
        ("hiking", "commuting", "travel", "school"),
        ("bags", "outdoor", "travel"),
    ),
    Category(
        "Jackets",
        ("rain jacket", "down jacket", "fleece jacket", "softshell jacket", "parka"),
        ("Patagonia", "The North Face", "Columbia", "Arcteryx", "Jack Wolfskin", "Fjallraven"),
        (49, 720),
        ("taped seams", "a packable hood", "recycled down insulation", "zipped hand pockets"),
        ("waterproof", "windproof", "insulated", "lightweight"),
        ("hiking", "winter", "city commutes", "travel"),
        ("outdoor", "clothing", "outerwear"),
    ),
    Category(
        "T-Shirts",
        ("t-shirt", "organic cotton t-shirt", "v-neck t-shirt", "polo shirt"),
        ("Uniqlo", "Levis", "Patagonia", "Carhartt", "Hanes"),
        (7, 60),
        ("a relaxed fit", "a ribbed crew neck", "pre-shrunk cotton", "a chest pocket"),
        ("organic", "slim fit", "oversized", "classic"),
        ("everyday wear", "layering", "summer"),
        ("clothing", "tops", "basics"),
    ),
    Category(
        "Hoodies",
        ("hoodie", "zip hoodie", "sweatshirt"),
        ("Champion", "Nike", "Adidas", "Carhartt", "Uniqlo"),
        (24, 130),
        ("a brushed fleece lining", "a kangaroo pocket", "ribbed cuffs", "a drawstring hood"),
        ("heavyweight", "oversized", "cosy", "organic"),
        ("lounging", "the gym", "cold evenings"),
        ("clothing", "sportswear", "casual"),
    ),
    Category(
        "Bicycles",
        ("road bike", "mountain bike", "electric bike", "city bike", "gravel bike"),
        ("Trek", "Giant", "Specialized", "Cannondale", "Cube", "Brompton"),
        (349, 6200),
        ("hydraulic disc brakes", "a carbon fork", "a 12-speed drivetrain", "tubeless-ready wheels"),
        ("aluminium", "carbon", "folding", "hardtail"),
        ("commuting", "trail riding", "long rides", "racing"),
        ("cycling", "outdoor", "sport"),
    ),
    Category(
        "Watches",
        ("smartwatch", "fitness tracker", "dive watch", "chronograph watch"),
        ("Garmin", "Apple", "Casio", "Seiko", "Fitbit", "Withings"),
        (29, 1250),
        ("GPS", "heart rate monitoring", "a sapphire crystal", "100 m water resistance", "a week of battery life"),
        ("sporty", "classic", "solar", "titanium"),
        ("running", "swimming", "everyday wear"),
        ("watches", "wearables", "accessories"),
    ),
    Category(
        "Speakers",
        ("bluetooth speaker", "smart speaker", "soundbar", "bookshelf speakers"),
        ("JBL", "Bose", "Sonos", "Marshall", "Ultimate Ears"),
        (24, 950),
        ("360-degree sound", "a 20-hour battery", "voice assistant support", "deep bass"),
        ("portable", "waterproof", "wireless", "compact"),
        ("parties", "the living room", "the beach"),
        ("audio", "music", "electronics"),
    ),
    Category(
        "Cookware",
        ("frying pan", "saucepan", "dutch oven", "wok", "cast iron skillet"),
        ("Le Creuset", "Tefal", "Lodge", "Staub", "Scanpan"),
        (14, 420),
        ("a non-stick coating", "an induction-ready base", "an oven-safe handle", "even heat distribution"),
        ("cast iron", "stainless steel", "non-stick", "enamelled"),
        ("everyday cooking", "searing steaks", "slow cooking"),
        ("kitchen", "cookware", "cooking"),
    ),
    Category(
        "Yoga",
        ("yoga mat", "yoga block", "resistance bands", "yoga strap"),
        ("Manduka", "Lululemon", "Gaiam", "Liforme"),
        (7, 150),
        ("a non-slip surface", "6 mm of cushioning", "natural rubber", "a carrying strap"),
        ("eco-friendly", "extra thick", "travel", "grippy"),
        ("hot yoga", "pilates", "home workouts"),
        ("yoga", "fitness", "sport"),
    ),
)
COLOURS = ("black", "white", "blue", "red", "green", "grey", "navy", "beige", "pink", "orange", "yellow", "olive")
MODELS: tuple[str, ...] = (
    "Air",
    "Nova",
    "Pulse",
    "Zen",
    "Vista",
    "Orbit",
    "Flex",
    "Pro",
    "Max",
    "Ultra",
    "Lite",
    "Edge",
    "Core",
)
MODELS += ("Prime", "Wave", "Glide", "Storm", "Peak", "Terra", "Sonic", "Aura", "Halo", "Apex", "Nimbus", "Echo")


@dataclass(frozen=True)
class DemoProduct:
    """One product of the demo catalog, with the attributes it was made from (relevance judgments read them)."""

    sku: str
    title: str
    description: str
    brand: str
    category: str
    tags: tuple[str, ...]
    price_amount: int
    stock: int
    noun: str
    descriptor: str
    colour: str


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _price(rng: random.Random, low: int, high: int) -> int:
    """A price in the range, most of them in its lower part, ending in .99 or .49 (minor units)."""
    major = low * (high / low) ** (rng.random() ** 1.3)
    return int(major) * 100 + rng.choice((99, 99, 49, 0))


def catalog(seed: int = 7, count: int = 5000) -> list[DemoProduct]:
    """``count`` products, the same for the same seed, spread evenly over the categories."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    products = []
    for n in range(count):
        c = CATEGORIES[n % len(CATEGORIES)]
        noun, brand, colour = rng.choice(c.nouns), rng.choice(c.brands), rng.choice(COLOURS)
        descriptor = rng.choice(c.descriptors)
        model = f"{rng.choice(MODELS)} {rng.randint(1, 9)}{rng.choice(('', '', 'X', 'S'))}"
        words = " ".join(w[0].upper() + w[1:] for w in f"{descriptor} {noun}".split())
        title = f"{brand} {model} {words} - {colour.title()}"
        features = rng.sample(c.features, 2)
        use = rng.choice(c.uses)
        description = (
            f"The {model} from {brand} is a {descriptor} {noun} in {colour}, with {features[0]} and {features[1]}. "
            f"Made for {use}."
        )
        tags = tuple(dict.fromkeys((*c.tags, _slug(descriptor), colour, _slug(use))))
        stock = 0 if rng.random() < 0.3 else rng.randint(1, 200)
        sku = f"{SKU_PREFIX}{_slug(c.name)[:8].strip('-')}-{n:05d}"
        price = _price(rng, *c.price)
        products.append(
            DemoProduct(sku, title[:200], description, brand, c.name, tags, price, stock, noun, descriptor, colour)
        )
    return products


def command(product: DemoProduct) -> UpsertProduct:
    return UpsertProduct(
        sku=product.sku,
        title=product.title,
        description=product.description,
        brand=product.brand,
        category=product.category,
        tags=list(product.tags),
        price=Money(product.price_amount, CURRENCY),
    )


@dataclass(frozen=True)
class Loaded:
    products: int  # upserts sent
    adjustments: int  # stock adjustments sent
    unchanged: int  # already in the read models as they would be


def _held(settings: Settings) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
    """What the read models hold of the demo SKUs: (title, price) per product, total stock per SKU."""
    options = f"-c search_path={settings.pg_schema}"
    pattern = f"{SKU_PREFIX}%"
    try:
        with psycopg.connect(settings.pg_url, options=options, connect_timeout=5) as db:
            like = sql.SQL("SELECT {} FROM {} WHERE sku LIKE %s")
            named = like.format(sql.SQL("sku, title, price_amount"), sql.Identifier(PRODUCTS.name))
            products = {sku: (title, price) for sku, title, price in db.execute(named, (pattern,))}
            levels = like.format(sql.SQL("sku, total"), sql.Identifier(STOCK.name))
            stock = {sku: total for sku, total in db.execute(levels, (pattern,))}
    except psycopg.Error as err:
        raise OpsError(f"postgres: {err}\n  fix: `shopstream stack up postgres`, then `shopstream db migrate`") from err
    return products, stock


def _pending(settings: Settings, products: list[DemoProduct]) -> Iterator[tuple[str, str, bytes]]:
    """(topic, key, envelope) of every command the read models do not reflect yet."""
    held, stock = _held(settings)
    service = Producer("service", "demo-catalog")
    now = datetime.now(UTC)
    for p in products:
        if held.get(p.sku) != (p.title, p.price_amount):
            yield (
                CATALOG_COMMANDS.name_for(settings.topic_prefix),
                p.sku,
                encode(envelop(command(p), producer=service, occurred_at=now)),
            )
        delta = p.stock - stock.get(p.sku, 0)
        if delta > 0:
            adjust = AdjustStock(sku=p.sku, delta=delta, reason="demo catalog")
            command_id = uuid.uuid5(ADJUSTMENTS, f"{p.sku}:{p.stock}").hex
            envelope = envelop(adjust, producer=service, occurred_at=now, message_id=command_id)
            yield INVENTORY_COMMANDS.name_for(settings.topic_prefix), p.sku, encode(envelope)


def load(settings: Settings, seed: int = 7, count: int = 5000) -> Loaded:
    """Send the commands that bring the read models to the demo catalog (nothing for what they already hold)."""
    products = catalog(seed, count)
    producer = KafkaProducer(
        {**client_config(settings, OPERATOR), "enable.idempotence": True, "linger.ms": 20, "log_level": 0}
    )
    failures: list[str] = []
    sent = {"catalog": 0, "inventory": 0}
    catalog_topic = CATALOG_COMMANDS.name_for(settings.topic_prefix)
    for topic, key, value in _pending(settings, products):
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    key=key.encode(),
                    on_delivery=lambda err, _m: failures.append(str(err)) if err else None,
                )
                break
            except BufferError:
                producer.poll(0.1)
        sent["catalog" if topic == catalog_topic else "inventory"] += 1
        producer.poll(0)
    if producer.flush(60) != 0 or failures:
        raise OpsError(f"kafka did not take every command: {failures[:1] or 'timed out'}\n  fix: `shopstream stack up`")
    return Loaded(sent["catalog"], sent["inventory"], len(products) - sent["catalog"])
