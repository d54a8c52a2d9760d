"""Shopstream ops."""
