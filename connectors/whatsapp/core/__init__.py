"""The framework-free core of the WhatsApp channel.

Nothing under this package imports rasa, sanic, flask, django or rest_framework (ruff's
banned-api rule enforces it per folder, and tests/core/test_import_boundaries.py imports the
whole package with those modules blocked). Pure functions over bytes and dicts (signature,
parsing, rendering) sit beside the few async parts that do I/O: the Graph API client, the
de-duplication store and the endpoint that owns a webhook's whole life.
"""
