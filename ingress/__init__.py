"""Shopstream ingress."""
