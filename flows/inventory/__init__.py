"""Per-SKU stock and reservations."""
