"""The course workflow around many submissions: batches (``batch``), the gradebook, Moodle in
and out, manual scores, and similarity between submissions."""
