"""For synchronous frameworks (Flask, Django): the thread bridge to the async core, and answer
backends (echo, a Rasa server's REST channel, any callable) that produce the bot's replies."""
