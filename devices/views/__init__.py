"""ECP pages. Views parse input, check permission (devices.permissions), call devices.actions."""
