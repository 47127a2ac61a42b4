"""The API's views, one module per resource. They parse, check permission, call
devices.actions with an `api` Actor, and answer; they never write state themselves."""
