"""The REST API under /api/v1/ (issue 7): DRF views over devices.actions, source `api`."""
