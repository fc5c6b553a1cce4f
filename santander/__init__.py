"""Select, ship and serve a Santander customer-transaction classifier."""

__version__ = "0.1.0"
