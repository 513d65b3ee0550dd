"""Publication: public lists and feeds, search, credit reports, the subject's side."""
