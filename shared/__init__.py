"""apim-inventory: a live inventory of Azure API Management instances, fed by Event Grid."""
