"""Adapters for where images and catalog changes come from: Zendesk tickets, catalog webhooks."""
