"""Custom actions of the sample bot, served by `rasa run actions` (rasa_sdk, port 5055)."""
