"""Helpers for tests and lab experiments (toy worlds with known answers); the product never imports this."""
