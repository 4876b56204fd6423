"""The Activity Log: who changed what in API Management, joined into the inventory's history."""
