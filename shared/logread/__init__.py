"""The exactly-once reader of Azure Monitor's log archives, shared by every log the app reads (the gateway logs'
usage, the Activity Log's audit records): positions and lines only, the meaning left to each log's sink."""
