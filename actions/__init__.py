"""Custom actions of Loja Exemplo, the sample bot (a fictional shop in São Paulo).

`rasa run actions` (rasa_sdk, port 5055) imports this package and every module in it
(`ActionExecutor.register_package` walks the package with `pkgutil.walk_packages`) and registers
each `Action` subclass it finds, so a new module with actions needs no import here.

They show what a bot can do on WhatsApp beyond domain responses:

- messages built with the channel's own builders (`from connectors.whatsapp import builders`): a
  list with sections, a location pin, a CTA URL button, an image, a reaction. An action sends one
  with `dispatcher.utter_message(json_message=body)`; the WhatsApp channel sends it as given,
  filling in `messaging_product` and the recipient, so the builders are called without `to`;
- the raw WhatsApp data that the channel puts in each user message's metadata
  (`tracker.latest_message["metadata"]["whatsapp"]`: profile name, raw message, ...);
- the entities the channel sends for what is not text, such as `/whatsapp_location{"latitude":
  -23.56, "longitude": -46.65}` for a shared location;
- a Rasa reminder that reaches the user as a WhatsApp template, the only kind of message Meta
  delivers outside the 24-hour customer-service window.

On other channels (REST, `rasa shell`, tests) the same actions answer with text and Rasa buttons,
since a Cloud API body means nothing there.

Modules, one job each:

- `catalogue`: the fake shop's data (stores, plans, categories, products);
- `geo`: distances and the nearest store;
- `wording`: how the bot writes quotes, distances and amounts for Brazilian users;
- `tracker`: reading the tracker (channel, WhatsApp metadata, entities and slots);
- `greeting`, `shop`, `stores`, `received`, `reminders`: the actions, by topic.

Python names are English; the domain's names (intents, entities, slots, responses, action
names) are the bot's Portuguese vocabulary, and everything users read is Brazilian Portuguese.
"""
