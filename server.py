"""The Flask WhatsApp server: Meta's webhooks in, an answer backend's replies out.

    python -m flask --app server run -p 5006

Routes: `GET /webhook` (Meta's verification), `POST /webhook` (notifications), `GET /health`.
Settings come from the environment, and from a `.env` file in the working directory (or a
parent) for what the environment does not set:

    WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_VERIFY_TOKEN, WHATSAPP_APP_SECRET
    WHATSAPP_API_VERSION, WHATSAPP_API_BASE_URL      (optional; the sandbox or a test server)
    WHATSAPP_BACKEND      echo (default) | rasa | package.module:callable
    WHATSAPP_RASA_URL     the Rasa server for `rasa` (default http://127.0.0.1:5005)

The server answers Meta at once and processes messages on a background event loop, so run it
as ONE process (the dev server, or `gunicorn -w 1 --threads 8 server:app`): de-duplication is
in memory unless `WHATSAPP_DEDUP=redis`. See the README, "Flask server and Django REST Framework".
"""

import logging
import os

from dotenv import find_dotenv, load_dotenv

from connectors.whatsapp.adapters.flask_blueprint import create_app

load_dotenv(find_dotenv(usecwd=True))
logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)

app = create_app()
