"""Data: the schema, reading and validating files, and the built-in synthetic generator."""
