"""The outbox of mails. Never imports devices: callers hand it a ready context."""
