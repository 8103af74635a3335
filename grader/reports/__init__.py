"""What people read: the per-submission reports (``render``, ``templates/``), the batch overview
page, and long answers kept once (``longtext``)."""
