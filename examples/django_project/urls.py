"""The WhatsApp webhook (GET verification, POST notifications) and its health route."""

from django.urls import path

from connectors.whatsapp.adapters.drf_view import WhatsAppHealthView, WhatsAppWebhookView

urlpatterns = [
    path("whatsapp/webhook", WhatsAppWebhookView.as_view(), name="whatsapp-webhook"),
    path("whatsapp/health", WhatsAppHealthView.as_view(), name="whatsapp-health"),
]
