"""The WhatsApp webhook (GET verification, POST notifications), its health and metrics routes."""

from django.urls import path

from connectors.whatsapp.adapters.drf_view import (
    WhatsAppHealthView,
    WhatsAppMetricsView,
    WhatsAppWebhookView,
)

urlpatterns = [
    path("whatsapp/webhook", WhatsAppWebhookView.as_view(), name="whatsapp-webhook"),
    path("whatsapp/health", WhatsAppHealthView.as_view(), name="whatsapp-health"),
    path("whatsapp/metrics", WhatsAppMetricsView.as_view(), name="whatsapp-metrics"),
]
