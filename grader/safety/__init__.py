"""Reading what a student controls (``untrusted``: probe results, bounded) and writing it where
people look (``escape``: ids, paths, CSV cells, terminal text)."""
