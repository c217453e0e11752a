"""Developer tools of this repository: the `make run` orchestrator (`python -m devtools.run`).

It lives apart from `sandbox/` because it serves real WhatsApp too: with Meta credentials in `.env`
it starts the action server and `rasa run` without the sandbox.
"""
