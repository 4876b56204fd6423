"""How people and hosts reach the app: the HTTP API's handlers, the apim-inventory command, output formats."""
