"""Portal views of accounts, one module per concern: ``auth`` (login, second factor, sudo,
logout), ``security`` (the account security page, passwords), ``tenants`` (tenant home, members,
invitations), ``service_ids`` and ``audit`` (the tenant's audit log)."""
