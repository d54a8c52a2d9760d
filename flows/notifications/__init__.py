"""The notifications flow."""
