"""Pure domain rules (numpy, shapely): damp and mould, gritting, bins. No I/O here."""
