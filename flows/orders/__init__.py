"""The order lifecycle saga."""
