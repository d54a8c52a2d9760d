"""Judged queries over the demo catalog (``ops.demo_catalog``): what a shopper types and how relevant each product is.

Each query grades every product 0 (not what was asked for) to 3 (exactly it) by a rule a
person would apply reading the product page: its kind (category and noun), its brand, its
colour or feature, its price. The queries cover plain words, typos, synonyms (a word the
catalog does not use), brand + category, and prices in words ("cheap", "under 50").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops.demo_catalog import DemoProduct

Grade = Callable[[DemoProduct], int]


@dataclass(frozen=True)
class Judged:
    q: str
    kind: str  # plain, typo, synonym, brand + category, price
    grade: Grade


def kind_of(category: str, *nouns: str, near: tuple[str, ...] = ()) -> Grade:
    """3: one of ``nouns`` in ``category`` (any noun of it when none given); 1: a ``near`` category."""

    def grade(p: DemoProduct) -> int:
        if p.category == category and (not nouns or p.noun in nouns):
            return 3
        if p.category == category:
            return 2
        return 1 if p.category in near else 0

    return grade


def both(kind: Grade, extra: Callable[[DemoProduct], bool]) -> Grade:
    """The kind's grade when ``extra`` holds too; two less when it does not (at least 0)."""
    return lambda p: kind(p) if extra(p) else max(kind(p) - 2, 0)


def cheap_of(category: str, products: list[DemoProduct]) -> Grade:
    """3: in the cheapest third of the category; 2: the middle third; 1: the rest of it."""
    prices = sorted(p.price_amount for p in products if p.category == category)
    third, two_thirds = prices[len(prices) // 3], prices[2 * len(prices) // 3]

    def grade(p: DemoProduct) -> int:
        if p.category != category:
            return 0
        return 3 if p.price_amount <= third else 2 if p.price_amount <= two_thirds else 1

    return grade


def judged(products: list[DemoProduct]) -> list[Judged]:
    running = kind_of("Running Shoes", near=("Sneakers",))
    headphones = kind_of("Headphones")
    return [
        Judged("running shoes", "plain", running),
        Judged("runing shoes", "typo", running),
        Judged("trail running shoes", "plain", kind_of("Running Shoes", "trail running shoes")),
        Judged("sneakers", "plain", kind_of("Sneakers", near=("Running Shoes",))),
        Judged("trainers", "synonym", kind_of("Sneakers", near=("Running Shoes",))),
        Judged("headphones", "plain", headphones),
        Judged("headphnes", "typo", headphones),
        Judged("noise cancelling headphones", "plain", kind_of("Headphones", "noise cancelling headphones")),
        Judged("earbuds", "plain", kind_of("Headphones", "earbuds")),
        Judged("sony headphones", "brand + category", both(headphones, lambda p: p.brand == "Sony")),
        Judged("cheap headphones", "price", cheap_of("Headphones", products)),
        Judged("headphones under 50", "price", both(headphones, lambda p: p.price_amount <= 5000)),
        Judged("laptop", "plain", kind_of("Laptops")),
        Judged("notebook computer", "synonym", kind_of("Laptops")),
        Judged("lenovo laptop", "brand + category", both(kind_of("Laptops"), lambda p: p.brand == "Lenovo")),
        Judged("gaming laptop", "plain", kind_of("Laptops", "gaming laptop")),
        Judged("cheap laptop", "price", cheap_of("Laptops", products)),
        Judged("smartphone", "plain", kind_of("Smartphones")),
        Judged("mobile phone", "synonym", kind_of("Smartphones")),
        Judged("samsung smartphone", "brand + category", both(kind_of("Smartphones"), lambda p: p.brand == "Samsung")),
        Judged("television", "synonym", kind_of("Televisions")),
        Judged("oled tv", "plain", kind_of("Televisions", "OLED TV")),
        Judged(
            "samsung tv under 1000",
            "price",
            both(kind_of("Televisions"), lambda p: p.brand == "Samsung" and p.price_amount <= 100_000),
        ),
        Judged("espresso machine", "plain", kind_of("Coffee Makers", "espresso machine")),
        Judged("expresso machine", "typo", kind_of("Coffee Makers", "espresso machine")),
        Judged("electric kettle", "plain", kind_of("Kettles", "electric kettle")),
        Judged("kettle under 40", "price", both(kind_of("Kettles"), lambda p: p.price_amount <= 4000)),
        Judged("blue mug", "plain", both(kind_of("Mugs", "mug", "travel mug"), lambda p: p.colour == "blue")),
        Judged("cup", "synonym", kind_of("Mugs")),
        Judged("couch", "synonym", kind_of("Sofas")),
        Judged("sofa bed", "plain", kind_of("Sofas", "sofa bed")),
        Judged("leather sofa", "plain", both(kind_of("Sofas"), lambda p: p.descriptor == "leather")),
        Judged("floor lamp", "plain", kind_of("Lamps", "floor lamp")),
        Judged("desk light", "synonym", kind_of("Lamps", "desk lamp")),
        Judged("laptop backpack", "plain", kind_of("Backpacks", "laptop backpack")),
        Judged("rucksack", "synonym", kind_of("Backpacks")),
        Judged("bakpack", "typo", kind_of("Backpacks")),
        Judged("waterproof jacket", "plain", both(kind_of("Jackets"), lambda p: p.descriptor == "waterproof")),
        Judged(
            "north face jacket", "brand + category", both(kind_of("Jackets"), lambda p: p.brand == "The North Face")
        ),
        Judged("down jacket", "plain", kind_of("Jackets", "down jacket")),
        Judged("tshirt", "synonym", kind_of("T-Shirts")),
        Judged("t-shirt under 15", "price", both(kind_of("T-Shirts"), lambda p: p.price_amount <= 1500)),
        Judged("hoodie", "plain", kind_of("Hoodies")),
        Judged("mountain bike", "plain", kind_of("Bicycles", "mountain bike")),
        Judged("bicycle", "synonym", kind_of("Bicycles")),
        Judged(
            "garmin smartwatch",
            "brand + category",
            both(kind_of("Watches", "smartwatch"), lambda p: p.brand == "Garmin"),
        ),
        Judged("bluetooth speaker", "plain", kind_of("Speakers", "bluetooth speaker")),
        Judged("marshal speaker", "typo", both(kind_of("Speakers"), lambda p: p.brand == "Marshall")),
        Judged("cast iron skillet", "plain", kind_of("Cookware", "cast iron skillet")),
        Judged("yoga mat", "plain", kind_of("Yoga", "yoga mat")),
        # Words a title does not hold, several wishes at once, one brand over many kinds.
        Judged("apple", "brand + category", lambda p: 3 if p.brand == "Apple" else 0),
        Judged(
            "gift for tea lovers",
            "plain",
            lambda p: (3 if "tea" in p.tags else 1) if p.category in ("Mugs", "Kettles") else 0,
        ),
        Judged(
            "stainless steel kettle", "plain", both(kind_of("Kettles"), lambda p: p.descriptor == "stainless steel")
        ),
        Judged("headphones for the gym", "plain", both(headphones, lambda p: "the-gym" in p.tags)),
        Judged("laptop for video editing", "plain", both(kind_of("Laptops"), lambda p: "video-editing" in p.tags)),
        Judged(
            "warm winter jacket",
            "plain",
            both(kind_of("Jackets"), lambda p: "winter" in p.tags or p.descriptor == "insulated"),
        ),
        Judged(
            "waterproof hiking backpack",
            "plain",
            both(kind_of("Backpacks", "hiking backpack"), lambda p: p.descriptor == "waterproof"),
        ),
        Judged(
            "non-stick frying pan",
            "plain",
            both(kind_of("Cookware", "frying pan"), lambda p: p.descriptor == "non-stick"),
        ),
        Judged(
            "red running shoes under 100",
            "price",
            both(running, lambda p: p.colour == "red" and p.price_amount <= 10_000),
        ),
        Judged(
            "cheap wireless headphones",
            "price",
            # cheap for headphones, said to be wireless (its kind, title or description); the others two grades less
            both(
                cheap_of("Headphones", products),
                lambda p: "wireless" in f"{p.noun} {p.title} {p.description}".lower(),
            ),
        ),
    ]
