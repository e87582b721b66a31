"""The rules engine port and its durable_rules implementation (worker processes)."""
