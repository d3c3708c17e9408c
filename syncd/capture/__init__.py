"""The one door: everything syncd learns becomes an `Event` submitted to the writer."""
