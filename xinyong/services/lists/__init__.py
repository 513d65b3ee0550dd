"""Lists: rules evaluated into listings, and the due process that moves them."""
