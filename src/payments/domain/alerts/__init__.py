"""Admin alerts: what went wrong, raised once per cooldown, stored and mailed (``email.admin.alert``)."""
