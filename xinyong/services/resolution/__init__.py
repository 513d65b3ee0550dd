"""Resolution: records linked to entities, the review queue, de-duplication, an entity's file."""
