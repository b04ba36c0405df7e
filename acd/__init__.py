"""ACD: queues, seats, skills, priorities, offers and routing (the sans-I/O core is acd.core)."""
