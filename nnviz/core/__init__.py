"""The headless core: data, models, training, inspection and files. No Qt here."""
