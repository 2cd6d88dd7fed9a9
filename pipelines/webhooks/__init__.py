"""Intercom webhooks: a receiver that verifies and keeps notifications, and a drain that applies them.

Why: Intercom's lists never show deletes, so without webhooks a deleted contact stays live in the
warehouse until `run --reconcile-deletes` lists every id. The receiver (`receiver.py`) checks each
notification (signature, sender address, size) and writes it to a durable inbox (`inbox.py`)
before it answers 200; the drain (`drain.py`) turns the inbox's delete-like events into
`_deleted_at` marks, the same for duplicates and any delivery order. Content stays the API's job.
"""
