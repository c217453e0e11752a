"""A minimal Django project serving the WhatsApp webhook with Django REST Framework."""
