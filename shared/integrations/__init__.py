"""The other Azure services: the Functions trigger types, ARM, the alerts topic, credentials, storage clients, blobs."""
