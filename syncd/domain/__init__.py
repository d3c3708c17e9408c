"""Pure rules: values in, values out. No I/O, no clock reads (callers pass `now`)."""
