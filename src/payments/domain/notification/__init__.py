"""Notifications: the emails the product sends, what each says, and the record of every one."""
