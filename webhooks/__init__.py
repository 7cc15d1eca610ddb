"""Signed webhooks (Standard Webhooks): a tenant's endpoints, the outbox of deliveries written
with their audit events, and the task that delivers them."""
