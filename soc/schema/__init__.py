"""ECS column names and types per event family, and the rules for reading timestamps."""

from soc.schema.families import COMMON, DEAD_LETTERS, FAMILIES, TIMESTAMP, columns, conform

__all__ = ["COMMON", "DEAD_LETTERS", "FAMILIES", "TIMESTAMP", "columns", "conform"]
