"""Adapters: each converts one framework's request and response to the core's, and nothing more.

- `rasa_channel`: Rasa's InputChannel/OutputChannel on Sanic (`rasa run`), needs the `rasa` extra;
- `flask_blueprint`: a Flask blueprint (used by `server.py`), needs the `flask` extra;
- `drf_view`: Django REST Framework views, needs the `django` extra.

This package re-exports nothing: importing it must not import any framework.
"""
