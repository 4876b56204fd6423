"""Moving a store from one layout to the next: `apim-inventory migrate`, and the recount it ends with."""
